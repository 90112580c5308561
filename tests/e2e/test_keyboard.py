"""An operator on the keyboard alone (or a screen reader) while the pages poll.

Drill: a poll replacing a region threw the focus back to the top of the page (overview, errors,
health, alerts: only elements with an id kept it), closed the charts' tables, and a filter's
drop-down applied on its first arrow key and lost the focus; nothing let the keyboard skip
the top bar's nine links.
"""

import pytest
from django.utils import timezone

from jobs.models import JobStatus
from monitoring.models import EventType
from tests.e2e.conftest import log_in
from tests.factories import AlertHistoryFactory, JobExecutionLogFactory, JobFactory

pytestmark = pytest.mark.e2e


def focused(page) -> dict:
    return page.evaluate(
        "() => { const el = document.activeElement;"
        " return {tag: el.tagName, id: el.id, href: el.getAttribute('href'), text: el.innerText.trim()}; }"
    )


def count_settles(page, region: str) -> None:
    page.evaluate(
        """(region) => { window.settles = 0; document.addEventListener('htmx:afterSettle', () => {
            if (document.getElementById(region)) window.settles += 1; }); }""",
        region,
    )


def refresh(page, region: str, url: str) -> None:
    """What the region's poll does (the same request and swap), without waiting its interval."""
    page.evaluate("([region, url]) => htmx.ajax('GET', url, {target: '#' + region, swap: 'outerHTML'})", [region, url])
    page.wait_for_function("() => window.settles >= 1")
    page.evaluate("() => { window.settles = 0; }")


def test_a_poll_of_the_overview_leaves_the_focus_on_the_card_it_was_on(page, alice):
    JobFactory(running=True)
    log_in(page, "alice", next_url="/")
    count_settles(page, "overview-live")
    card = page.locator("#overview-live a.card[href='/jobs/']")
    card.focus()

    page.wait_for_function("() => window.settles >= 1", timeout=12_000)  # its own poll, every 5 s

    assert focused(page)["href"] == "/jobs/" and focused(page)["tag"] == "A"
    page.keyboard.press("Tab")  # on to the next link, not back to the top bar
    assert page.evaluate("() => document.getElementById('overview-live').contains(document.activeElement)")


def test_the_alerts_title_link_and_the_errors_chart_table_survive_a_poll(page, alice):
    alert = AlertHistoryFactory(title="Health check api/ai_matching is critical")
    failed = JobFactory(failed=True)
    JobExecutionLogFactory(
        job=failed,
        event_type=EventType.ERROR,
        status=JobStatus.FAILED,
        timestamp=timezone.now(),
        error_details={"type": "ValueError", "message": "bad", "error_class": "data", "fingerprint": "f" * 16},
    )
    log_in(page, "alice", next_url="/alerts/")
    count_settles(page, "alert-list")
    page.locator(f"#alert-{alert.id} a.alert-title").focus()

    refresh(page, "alert-list", "/alerts/")

    assert focused(page)["href"] == f"/alerts/{alert.id}/"

    page.goto("/errors/?timeframe=1h")
    count_settles(page, "errors-live")
    page.locator("#errors-live details.chart-data summary").click()
    page.locator("#errors-live details.chart-data summary").focus()

    refresh(page, "errors-live", "/errors/?timeframe=1h")

    assert page.locator("#errors-live details.chart-data").get_attribute("open") == ""
    assert focused(page)["tag"] == "SUMMARY"


def test_a_filters_drop_down_applied_by_arrow_key_keeps_the_focus_for_the_next(page, alice):
    AlertHistoryFactory(severity="critical")
    log_in(page, "alice", next_url="/alerts/")
    page.focus("#filter-severity")

    page.keyboard.press("ArrowDown")
    page.wait_for_url("**/alerts/?*severity=*")
    page.wait_for_function("() => document.activeElement.id === 'filter-severity'")
    first = page.input_value("#filter-severity")
    page.keyboard.press("ArrowDown")
    page.wait_for_function(
        "(first) => !location.search.includes('severity=' + first + '&') && "
        "!location.search.endsWith('severity=' + first)",
        arg=first,
    )

    page.wait_for_function("() => document.activeElement.id === 'filter-severity'")
    assert page.input_value("#filter-severity") != first


def test_the_first_tab_offers_to_skip_to_the_content(page, alice):
    log_in(page, "alice", next_url="/alerts/")

    page.keyboard.press("Tab")
    assert focused(page)["text"] == "Skip to content"
    assert page.locator(".skip-link").bounding_box()["y"] >= 0  # shown once focused
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")

    assert page.evaluate("() => document.querySelector('main').contains(document.activeElement)")


def test_after_pausing_a_job_type_the_focus_is_on_what_happened(page, alice):
    JobFactory(job_type="ai_matching", status=JobStatus.QUEUED)
    log_in(page, "alice", next_url="/jobs/")
    page.on("dialog", lambda dialog: dialog.accept())

    page.click("text=❚❚ Pause a job type…")
    page.select_option(".pause-form select[name=job_type]", "ai_matching")
    page.press(".pause-form input[name=reason]", "Enter")

    page.wait_for_selector(".messages >> text=Paused ai_matching")
    page.wait_for_function("() => document.activeElement.matches('.messages .notice')")
