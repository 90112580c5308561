"""Performance, errors, health and alerts in a real browser: charts drawn, filters kept, an alert
acknowledged and resolved."""

import re

import pytest
import time_machine
from django.utils import timezone

from alerts.manager import alert_manager
from alerts.models import AlertHistory, DeliveryStatus
from alerts.selectors import alert_list
from alerts.services import alert_resolve
from jobs.manager import job_manager
from jobs.models import Job, JobStatus
from tests.conftest import wait_for
from tests.e2e.conftest import log_in
from tests.e2e.history import seed_health_history, seed_job_history
from tests.factories import JobFactory

pytestmark = pytest.mark.e2e


def raise_failure_alerts():
    """What the job-failure rule did as the seeded jobs failed, each at its own time."""
    for job in Job.objects.filter(status=JobStatus.FAILED).order_by("finished_at"):
        with time_machine.travel(job.finished_at, tick=False):
            alert_manager.handle_job_finished(job)


def test_the_performance_page_draws_its_charts_and_keeps_its_filters(page, alice):
    seed_job_history(timezone.now(), jobs=600)

    log_in(page, "alice", next_url="/performance/")
    for chart in ("chart-latency", "chart-throughput", "chart-success-rate"):
        svg = page.locator(f"#{chart} svg.chart-svg")
        assert svg.is_visible()
        assert svg.bounding_box()["width"] > 300  # drawn at a readable size
    assert page.locator("#chart-latency polyline").count() >= 2  # p50 and p95
    assert page.locator("#chart-throughput rect.bar").count() > 10
    # Exact values: every bucket's tooltip, and the same numbers as a table.
    assert "p95:" in page.locator("#chart-latency rect.hit title").first.text_content()
    page.click("#chart-latency summary")
    assert page.locator("#chart-latency details table tbody tr").count() > 10
    page.evaluate("window.notReloaded = true")

    # Another timeframe and one job type: the URL says so; htmx swaps the page without a reload.
    page.click("nav[aria-label=Timeframe] >> text=24h")
    page.wait_for_url(re.compile(r".*timeframe=24h"))
    page.wait_for_selector("text=Points are 15 min buckets")
    page.select_option("select[name=job_type]", "ai_matching")
    page.wait_for_url(re.compile(r".*timeframe=24h&job_type=ai_matching"))
    page.wait_for_selector("text=ai_matching jobs only")
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#chart-latency polyline").count() >= 2
    page.reload()
    assert page.locator("select[name=job_type]").input_value() == "ai_matching"
    assert page.locator("nav[aria-label=Timeframe] a[aria-current=page]").inner_text() == "24h"


def test_an_operator_resolves_an_alert_raised_by_a_failing_job(page, alice, q_cluster):
    job = job_manager.submit_job("demo.fail", {"error_class": "data", "fail_times": 1})
    alert = wait_for(lambda: AlertHistory.objects.filter(job_id=job.id).first(), message="the failure alert")

    log_in(page, "alice", next_url="/alerts/")
    row = page.locator(f"#alert-{alert.id}")
    assert "demo.fail job failed" in row.inner_text()
    assert "open" in row.locator(".badge-open").inner_text()
    page.evaluate("window.notReloaded = true")

    row.locator("text=Resolve").click()
    page.wait_for_selector(f"#alert-{alert.id}.is-resolved >> text=by alice")
    assert page.evaluate("window.notReloaded") is True
    alert.refresh_from_db()
    assert alert.resolved_at is not None and alert.state.resolved_by == "alice"

    # Its page says so, and links the job that failed.
    page.goto(f"/alerts/{alert.id}/")
    assert "resolved" in page.locator("#alert-live h1").inner_text()
    assert page.locator("#resolve-form").count() == 0
    page.click(f"a[href='/jobs/{job.id}/']")
    page.wait_for_selector("#job-live h1 .badge-failed")
    assert "demo.fail job failed" in page.locator(".alert-list").inner_text()


def test_an_operator_acknowledges_an_alert_then_resolves_it_from_the_same_row(page, alice):
    with time_machine.travel(timezone.now(), tick=False):
        alert = alert_manager.process_alert_sync(
            "system_health", "critical", {"title": "redis is down", "message": "refused", "check": "redis/ping"}
        )
    log_in(page, "alice", next_url="/alerts/?severity=critical")
    row = page.locator(f"#alert-{alert.id}")
    page.evaluate("window.notReloaded = true")

    row.locator("button", has_text="Acknowledge").click()
    page.wait_for_selector(f"#alert-{alert.id} >> text=✓ acknowledged")
    assert "by alice" in row.inner_text() and "holds escalation and repeats for" in row.inner_text()
    assert row.locator("button", has_text="Renew ack").is_visible()
    alert.refresh_from_db()
    assert alert.state.acknowledged_by == "alice"

    row.locator("button", has_text="Resolve").click()  # the swapped row's own form
    page.wait_for_selector(f"#alert-{alert.id}.is-resolved >> text=by alice")
    assert page.evaluate("window.notReloaded") is True
    # The counts beside the list come with the row (not the next poll, seconds later), counted for
    # the list it was in (severity=critical): its URL was kept across both swaps.
    page.wait_for_selector("#alert-list-counts >> text=No open alerts match these filters", timeout=3_000)


def test_from_the_overview_to_the_alerts_nobody_is_on_which_an_acknowledgement_leaves(page, alice):
    with time_machine.travel(timezone.now(), tick=False):
        alerts = [
            alert_manager.process_alert_sync(
                "system_health", "critical", {"title": f"{name} is down", "message": "refused", "check": f"{name}/ping"}
            )
            for name in ("redis", "smtp")
        ]
    log_in(page, "alice")
    page.click("text=none acknowledged yet →")
    page.wait_for_url("**/alerts/?unacknowledged=1")
    assert page.locator("input[name=unacknowledged]").is_checked()
    page.wait_for_selector("#alert-list-counts >> text=of 2 open alerts not acknowledged")

    page.locator(f"#alert-{alerts[0].id}").locator("button", has_text="Acknowledge").click()
    page.wait_for_selector(f"#alert-{alerts[0].id} >> text=✓ acknowledged")
    page.wait_for_selector("#alert-list-counts >> text=of 1 open alert not acknowledged")  # with the row
    # The next poll (10 s) leaves it out of the list: someone is on it.
    page.wait_for_selector(f"#alert-{alerts[0].id}", state="detached", timeout=15_000)
    assert page.locator(f"#alert-{alerts[1].id}").is_visible()

    page.locator("input[name=unacknowledged]").uncheck()  # the filters submit themselves
    page.wait_for_url(lambda url: "/alerts/" in url and "unacknowledged" not in url)
    page.wait_for_selector(f"#alert-{alerts[0].id} >> text=✓ acknowledged")


def test_resolving_from_an_alerts_page_keeps_the_reason_typed_while_it_polls(page, alice):
    with time_machine.travel(timezone.now(), tick=False):
        alert = alert_manager.process_alert_sync(
            "system_health", "critical", {"title": "database is down", "message": "no answer", "check": "database/db"}
        )
    log_in(page, "alice", next_url=f"/alerts/{alert.id}/")
    page.fill("#resolve-form input[name=reason]", "failed over to the replica")
    stamp = page.locator("#alert-live .updated").inner_text()
    page.wait_for_function("(stamp) => document.querySelector('#alert-live .updated').innerText !== stamp", arg=stamp)
    assert page.input_value("#resolve-form input[name=reason]") == "failed over to the replica"  # a poll kept it

    page.click("#resolve-form button")
    page.wait_for_selector("#alert-notice >> text=Resolved.")
    assert "failed over to the replica" in page.locator("#alert-live").inner_text()
    assert page.locator("#alert-live").get_attribute("hx-trigger") is None  # resolved: polling stops


@pytest.fixture
def recipients(settings):
    settings.ALERTS = {
        **settings.ALERTS,
        "RECIPIENTS": {
            "info": [],
            "warning": ["ops@example.com"],
            "error": ["ops@example.com", "slack:https://hooks.slack.com/services/T0/B0/SECRET"],
            "critical": ["ops@example.com", "oncall@example.com"],
        },
        "ESCALATION_RECIPIENTS": {"info": [], "warning": [], "error": ["lead@example.com"], "critical": []},
    }


def notifications_went_out(alert):
    """What the delivery tasks would have done: the email went, the chat webhook was down."""
    alert.deliveries.filter(channel="email").update(status=DeliveryStatus.SENT, attempts=1, sent_at=timezone.now())
    alert.deliveries.exclude(channel="email").update(
        status=DeliveryStatus.FAILED, attempts=6, last_error="HTTP 503 from hooks.slack.com: service unavailable"
    )
    AlertHistory.objects.filter(id=alert.id).update(notification_sent=True)


def test_screenshots_of_the_metrics_health_and_alerts_pages(page, browser, live_server, alice, recipients, screenshot):
    """A seeded day of history (docs/screenshots/ with SAVE_SCREENSHOTS=1)."""
    now = timezone.now()
    seed_job_history(now)
    seed_health_history(now)
    raise_failure_alerts()
    with time_machine.travel(now, tick=False):
        slow = {"title": "api/ai_matching is critical", "message": "HTTP 200 in 3412 ms", "check": "api/ai_matching"}
        alert_manager.process_alert_sync("system_health", "critical", slow)
    failures = {a.job_type: a for a in alert_list(alert_type="job_failure")}
    for alert in failures.values():
        notifications_went_out(alert)
    alert_manager.escalate_alert_sync(failures["demo.fail"].id)
    alert_resolve(alert=failures["demo.sleep"], user=alice, reason="Timeouts from the matcher's old node; drained it.")
    for status, progress in [("running", 35), ("running", 80), ("retrying", 10), ("queued", 0)]:
        JobFactory(job_type="ai_matching", status=status, progress=progress, attempts=1 if status != "queued" else 0)

    log_in(page, "alice", next_url="/?timeframe=24h")
    screenshot(page, "overview")
    for url, name in [
        ("/performance/?timeframe=24h", "performance"),
        ("/performance/?timeframe=24h&job_type=ai_matching", "performance-ai-matching"),
        ("/errors/", "errors"),
        ("/health/", "health"),
        ("/alerts/?include_resolved=1", "alerts"),
        (f"/alerts/{failures['ai_matching'].id}/", "alert-detail"),
    ]:
        page.goto(url)
        screenshot(page, name)

    dark = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=live_server.url, color_scheme="dark")
    dark_page = dark.new_page()
    log_in(dark_page, "alice", next_url="/performance/?timeframe=24h")
    screenshot(dark_page, "performance-dark")
    dark.close()
