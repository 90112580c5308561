"""The alert admin in a real browser, at the window size operators use: status in view, resolve on the page."""

import pytest

from alerts.manager import alert_manager
from alerts.models import AlertHistory
from tests.e2e.conftest import log_in
from tests.factories import JobFactory

pytestmark = pytest.mark.e2e

WINDOW = {"width": 1400, "height": 900}


@pytest.fixture
def operator(alice):
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    return alice


def raise_alerts():
    """As the demo raises them: job failures, a health check, a resource alert."""
    for job_type in ("ai_matching", "imports.candidates", "demo.fail"):
        job = JobFactory(failed=True, job_type=job_type)
        data = {"title": f"{job_type} job failed", "message": "E: boom", "job_id": job.id, "job_type": job_type}
        alert_manager.process_alert_sync("job_failure", "error", data)
    alert_manager.process_alert_sync(
        "system_health", "warning", {"title": "Health check job_queue/jobs.failure_rate_pct is warning", "message": "x"}
    )
    alert_manager.process_alert_sync(
        "resource_utilization",
        "critical",
        {"title": "Resource utilization resource/cpu.percent on vm is critical", "message": "x"},
    )
    AlertHistory.objects.update(notification_sent=True)  # as if delivered (no recipients are set here)
    AlertHistory.objects.filter(alert_type="resource_utilization").update(escalated=True)


def test_the_alert_list_shows_every_alerts_status_without_scrolling(page, operator):
    raise_alerts()
    page.set_viewport_size(WINDOW)

    log_in(page, "alice")
    page.goto("/admin/alerts/alerthistory/")

    results = page.locator("#changelist-form .results")
    assert results.evaluate("e => e.scrollWidth <= e.clientWidth")  # no horizontal scrolling
    statuses = page.locator("#result_list td.field-status")
    assert statuses.count() == 5
    for i in range(5):
        box = statuses.nth(i).bounding_box()
        assert box["x"] + box["width"] <= WINDOW["width"]
    assert "open, escalated" in statuses.all_inner_texts()


def test_on_a_1280_px_laptop_the_alert_titles_are_not_broken_mid_word(page, operator):
    """The 3 a.m. drill: beside admin's sidebar and the filters, the titles had 67 px and read
    "ai_mat/ching job failed" on four lines."""
    raise_alerts()
    page.set_viewport_size({"width": 1280, "height": 800})

    log_in(page, "alice")
    page.goto("/admin/alerts/alerthistory/")

    results = page.locator("#changelist-form .results")
    assert results.evaluate("e => e.scrollWidth <= e.clientWidth")  # no horizontal scrolling
    title = page.locator("#result_list th.field-title_and_error a", has_text="imports.candidates job failed").first
    words = title.evaluate(
        """a => { const text = a.firstChild; const range = document.createRange();
                  return ["imports.candidates", "failed"].map(word => {
                      const start = text.data.indexOf(word);
                      range.setStart(text, start); range.setEnd(text, start + word.length);
                      return range.getClientRects().length; }); }"""
    )
    assert words == [1, 1]  # each word on one line: none broken
    assert page.locator("#nav-sidebar").count() == 0


def test_the_alert_list_tells_error_classes_apart_in_the_titles_cell(page, operator):
    """Two "ai_matching job failed": a night of timeouts and a missing key, each error cut to three
    short lines under its title (in full on hover), the list no wider for it, even for one long token."""
    errors = {
        "transient": ("httpx.ConnectTimeout", "timed out " + "x" * 400),
        "configuration": ("django.core.exceptions.ImproperlyConfigured", "AI_MATCHING_API_KEY is not set"),
    }
    for error_class, (error_type, message) in errors.items():
        last_error = {"type": error_type, "message": message, "error_class": error_class}
        alert_manager.handle_job_finished(
            JobFactory(failed=True, job_type="ai_matching", error_class=error_class, last_error=last_error)
        )
    page.set_viewport_size(WINDOW)

    log_in(page, "alice")
    page.goto("/admin/alerts/alerthistory/")

    results = page.locator("#changelist-form .results")
    assert results.evaluate("e => e.scrollWidth <= e.clientWidth")  # no horizontal scrolling
    lines = page.locator("#result_list th.field-title_and_error .alert-error")
    assert sorted(lines.locator("b").all_inner_texts()) == ["configuration", "transient"]
    assert "ImproperlyConfigured: AI_MATCHING_API_KEY is not set" in lines.all_inner_texts()[0]
    long_one = page.locator(".alert-error", has_text="ConnectTimeout")
    assert long_one.get_attribute("title").startswith("httpx.ConnectTimeout: timed out xxx")
    font_size = float(long_one.evaluate("e => getComputedStyle(e).fontSize").removesuffix("px"))
    assert long_one.bounding_box()["height"] <= 3 * 1.6 * font_size  # clamped to three lines


def test_an_operator_resolves_an_alert_on_its_admin_page(page, operator):
    raise_alerts()
    alert = AlertHistory.objects.get(alert_type="system_health")
    page.set_viewport_size(WINDOW)

    log_in(page, "alice")
    page.goto(f"/admin/alerts/alerthistory/{alert.id}/change/")
    page.fill("#resolve-form input[name=reason]", "queue drained")
    page.click("#resolve-form input[type=submit]")

    page.wait_for_selector("ul.messagelist")
    assert "was resolved." in page.locator("ul.messagelist").inner_text()
    assert page.locator("#resolve-form").count() == 0
    assert page.locator("input[name=_save]").count() == 0
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert alert.state.resolution_reason == "queue drained"


def test_an_operator_acknowledges_an_alert_on_its_admin_page_then_resolves_it(page, operator):
    """At 3 a.m. the alert's page is where the operator lands (from the notification, the list):
    taking it and, once fixed, resolving it are both there."""
    raise_alerts()
    alert = AlertHistory.objects.get(alert_type="system_health")
    page.set_viewport_size({"width": 1280, "height": 800})

    log_in(page, "alice")
    page.goto(f"/admin/alerts/alerthistory/{alert.id}/change/")
    page.click("#acknowledge-form input[type=submit]")

    page.wait_for_selector("ul.messagelist")
    assert "was acknowledged: no escalation or repeat until" in page.locator("ul.messagelist").inner_text()
    assert page.locator("#acknowledge-form input[type=submit]").get_attribute("value") == "Renew acknowledgement"
    assert page.locator(".field-acknowledgement .readonly").inner_text().startswith("by alice at ")
    alert.refresh_from_db()
    assert alert.state.acknowledged_by == "alice"

    page.fill("#resolve-form input[name=reason]", "queue drained")
    page.click("#resolve-form input[type=submit]")
    page.wait_for_selector("ul.messagelist >> text=was resolved.")
    assert page.locator("#acknowledge-form, #resolve-form").count() == 0
