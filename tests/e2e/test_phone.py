"""The dashboard on a phone: 390 px wide, every link in reach without panning the page sideways."""

import pytest
from django.utils import timezone

from monitoring.models import EventType
from tests.e2e.conftest import log_in
from tests.factories import (
    AlertHistoryFactory,
    JobExecutionLogFactory,
    JobFactory,
    JobRetryHistoryFactory,
    SystemHealthMetricFactory,
)

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def assert_fits_the_phone(page):
    # The page itself never scrolls sideways (wide tables scroll inside their own .table-wrap).
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    links = page.locator(".topbar a, .topbar button")
    names = links.all_inner_texts()
    assert {"Overview", "Jobs", "Performance", "Errors", "Health", "Alerts", "Log out"} <= set(names)
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], names[i]


def assert_no_table_squeezed(page):
    # A table squeezed to the screen's width wraps its message column a letter per line: the
    # health page's rows were 1,800 px tall. The lists turn into cards instead (a line per
    # field, the message the card's width); other wide tables scroll in their box.
    tallest = page.evaluate(
        "Math.max(0, ...Array.from(document.querySelectorAll('table tbody tr')).map(r => r.offsetHeight))"
    )
    assert 0 < tallest <= 400
    narrowest = page.evaluate(
        "Math.min(1e9, ...Array.from(document.querySelectorAll('table td.message')).map(c => c.offsetWidth))"
    )
    assert narrowest >= 240


@pytest.mark.parametrize(
    "url", ["/", "/jobs/?view=finished", "/errors/?timeframe=24h", f"/errors/?error={'f' * 16}", "/health/", "/alerts/"]
)
def test_every_nav_link_and_log_out_are_in_reach_at_390_px(page, alice, url):
    """Drill: at 390 px the page was 722-738 px wide; Errors, Health, Alerts and Log out sat at
    x=405..672, reachable only by panning the whole page. Then the errors page was still 539 px
    wide and the health page's tables squeezed to rows 1,800 px tall."""
    long_message = "ValueError: " + "a long message " * 20
    failed = JobFactory(failed=True, message=long_message)
    JobExecutionLogFactory(
        job=failed,
        event_type=EventType.ERROR,
        timestamp=timezone.now(),
        message=long_message,
        error_details={"type": "ValueError", "message": long_message, "error_class": "data", "fingerprint": "f" * 16},
    )
    JobFactory(running=True, progress=40)
    SystemHealthMetricFactory(timestamp=timezone.now(), details={"message": "SELECT 1 answered in 0.2 ms " * 4})
    AlertHistoryFactory(title="Health check api/ai_matching is critical", message=long_message)
    page.set_viewport_size(PHONE)

    log_in(page, "alice", next_url=url)

    assert_fits_the_phone(page)
    assert_no_table_squeezed(page)


def test_an_alerts_acknowledge_and_resolve_are_on_the_screen_at_390_px(page, alice):
    """With Acknowledge beside it, the reason field pushed Resolve past the right edge (clipped)."""
    alert = AlertHistoryFactory(title="Health check api/ai_matching is critical")
    page.set_viewport_size(PHONE)

    log_in(page, "alice", next_url=f"/alerts/{alert.id}/")

    assert_fits_the_phone(page)
    for button in ("#alert-live button:has-text('Acknowledge')", "#resolve-form button"):
        box = page.locator(button).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], button


def assert_nothing_off_screen(page, selector: str):
    """Every `selector` lies within the screen's width: nothing to find by scrolling a table sideways."""
    boxes = [page.locator(selector).nth(i).bounding_box() for i in range(page.locator(selector).count())]
    assert boxes, selector
    assert [box for box in boxes if box["x"] < 0 or box["x"] + box["width"] > PHONE["width"]] == [], selector


def test_the_lists_read_as_cards_with_every_field_and_action_on_the_screen_at_390_px(page, alice):
    """Drill: at 390 px the alerts' Acknowledge and Resolve sat at x≈805 and x≈928, the health
    components' "What was seen" at x≈440, a job's event messages and attempts' errors off-screen:
    each table scrolled sideways in its box, with nothing to say so."""
    long_message = "httpx.ConnectTimeout: simulated: connection timed out " * 3
    job = JobFactory(failed=True, message=long_message)
    for event_type in (EventType.STARTED, EventType.ERROR):
        JobExecutionLogFactory(job=job, event_type=event_type, timestamp=timezone.now(), message=long_message)
    JobRetryHistoryFactory(job=job, attempt_number=1, error_message=long_message)
    SystemHealthMetricFactory(timestamp=timezone.now(), details={"message": "SELECT 1 answered in 0.2 ms"})
    AlertHistoryFactory(title="Health check api/ai_matching is critical", message=long_message)
    page.set_viewport_size(PHONE)

    log_in(page, "alice", next_url="/alerts/")
    assert_nothing_off_screen(page, "#alert-rows td")
    assert_nothing_off_screen(page, "#alert-rows button")
    assert (
        page.locator("#alert-rows td[data-label='Last seen']").first.evaluate(
            "cell => getComputedStyle(cell, '::before').content"
        )
        == '"Last seen"'
    )

    page.goto(f"/jobs/{job.id}/")
    assert_nothing_off_screen(page, "table.timeline td.message")
    assert_nothing_off_screen(page, "table.attempts td.message")
    page.goto("/health/")
    assert_nothing_off_screen(page, "table.health td.message")
    page.goto("/jobs/?view=finished")
    assert_nothing_off_screen(page, "#job-rows td")


def test_on_a_wide_screen_the_lists_stay_tables(page, alice):
    AlertHistoryFactory(title="Health check api/ai_matching is critical")

    log_in(page, "alice", next_url="/alerts/")

    row = page.locator("#alert-rows tr").first
    assert row.evaluate("row => getComputedStyle(row).display") == "table-row"
    assert page.locator("table.alerts thead").is_visible()


def test_a_table_that_scrolls_in_its_box_is_a_named_tab_stop_and_one_that_fits_is_not(page, alice):
    """axe at 390 px: the error classes' and the job types' tables scrolled sideways in their box,
    which the keyboard could not reach to scroll (scrollable-region-focusable)."""
    job = JobFactory(failed=True)
    details = {"type": "ValueError", "message": "bad row", "error_class": "data", "fingerprint": "a" * 16}
    JobExecutionLogFactory(job=job, event_type=EventType.ERROR, timestamp=timezone.now(), error_details=details)
    page.set_viewport_size(PHONE)
    log_in(page, "alice", next_url="/errors/?timeframe=24h")

    by_class = page.locator(".table-wrap:has(th:has-text('What it means'))")
    assert (by_class.get_attribute("tabindex"), by_class.get_attribute("aria-label")) == ("0", "By class")
    assert by_class.get_attribute("role") == "region"

    page.set_viewport_size({"width": 1366, "height": 900})
    page.wait_for_function("!document.querySelector('.table-wrap[tabindex]')")
