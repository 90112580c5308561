"""An operator on the keyboard alone (or a screen reader) while the pages poll.

Drill: a poll replacing a region threw the focus back to the top of the page (overview, errors,
health, alerts: only elements with an id kept it), closed the charts' tables, and a filter's
drop-down applied on its first arrow key and lost the focus; nothing let the keyboard skip
the top bar's nine links.
"""

import pytest
from django.utils import timezone

from jobs.models import Job, JobStatus
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
    # htmx.ajax's promise resolves once the answer is swapped in; its settle follows (20 ms).
    page.evaluate(
        "([region, url]) => htmx.ajax('GET', url, {target: '#' + region, swap: 'outerHTML'})"
        ".then(() => new Promise((settled) => setTimeout(settled, 100)))",
        [region, url],
    )


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
    page.locator(f"#alert-{alert.id} a.alert-title").focus()

    refresh(page, "alert-list", "/alerts/")

    assert focused(page)["href"] == f"/alerts/{alert.id}/"

    page.goto("/errors/?timeframe=1h")
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


def test_a_filters_drop_down_gets_the_focus_back_even_if_it_lost_it_meanwhile(page, alice):
    # htmx puts the focus back only on the element that still had it when the new page came in; a
    # CI run saw the focus end on <body> once. Here it is taken away on purpose, just before.
    log_in(page, "alice", next_url="/alerts/")
    page.evaluate(
        """() => document.addEventListener("htmx:beforeSwap", (event) => {
             if (event.detail.target === document.body) document.activeElement.blur();
           }, {once: true})"""
    )
    page.focus("#filter-severity")

    page.keyboard.press("ArrowDown")
    page.wait_for_url("**/alerts/?*severity=*")

    page.wait_for_function("() => document.activeElement.id === 'filter-severity'")


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


def test_a_poll_scrolls_nothing_and_keeps_the_focus_on_a_row_further_down(page, alice):
    """Re-check: with the page scrolled and the focus in the polled rows, Chrome's scroll anchoring
    followed the focused element while the new rows were inserted above the old: 952 -> 1668 px."""
    JobFactory.create_batch(45, completed=True, finished_at=timezone.now())
    page.set_viewport_size({"width": 1366, "height": 700})
    log_in(page, "alice", next_url="/jobs/?view=finished")
    page.evaluate("window.scrollTo(0, 900)")
    link = page.locator("#job-rows a.job-link").nth(20)
    link.focus()
    link_id = link.get_attribute("id")
    page.evaluate("window.scrollTo(0, 900)")

    refresh(page, "job-rows", "/jobs/?view=finished")

    assert page.evaluate("window.scrollY") == 900
    assert focused(page)["id"] == link_id


def test_a_focused_notice_a_poll_removes_leaves_the_focus_in_its_row(page, alice):
    """Re-check: the focus fell to <body> when a poll removed the focused notice (an alert
    acknowledged from the list), or changed the focused link's href (an error group's latest job):
    both are found again at their place in their nearest container with an id (the row here)."""
    log_in(page, "alice", next_url="/alerts/")
    alert = AlertHistoryFactory(title="Health check api/ai_matching is critical")
    page.goto("/alerts/")
    page.click(f"#acknowledge-{alert.id}")
    page.wait_for_function("() => document.activeElement.matches('.row-notice')")

    refresh(page, "alert-list", "/alerts/")  # the notice is gone

    assert page.evaluate(f"() => document.getElementById('alert-{alert.id}').contains(document.activeElement)")
    assert focused(page)["tag"] in ("A", "BUTTON")


def test_the_paused_banners_resume_button_keeps_the_focus_through_the_rows_polls(page, alice):
    """Re-check: the banner comes with each poll of the rows (out of band, every 2 s): its Resume
    button lost the focus at the first, before a keyboard user could press it."""
    from jobs.models import JobTypePause

    JobFactory(job_type="ai_matching", status=JobStatus.QUEUED)
    JobTypePause.objects.create(job_type="ai_matching", paused_by="bob")
    log_in(page, "alice", next_url="/jobs/")
    page.locator("#paused-types button", has_text="Resume").focus()

    refresh(page, "job-rows", "/jobs/")

    assert focused(page)["tag"] == "BUTTON" and "Resume" in focused(page)["text"]


def test_the_focused_cancel_notice_gone_with_the_job_stopped_leaves_the_focus_on_retry(page, alice):
    """Re-check: an operator cancelled a running job from its page; "Cancel requested: it stops…"
    took the focus, and when a poll showed the job cancelled it went, and the focus with it, to
    <body>: the next Tab started again at the top bar."""
    job = JobFactory(running=True)
    log_in(page, "alice", next_url=f"/jobs/{job.id}/")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#cancel-job")
    page.wait_for_function("() => document.activeElement.matches('#job-notice [data-while-active]')")

    Job.objects.filter(id=job.id).update(status=JobStatus.CANCELLED, finished_at=timezone.now())
    refresh(page, "job-live", f"/jobs/{job.id}/")  # the poll that sees it stopped

    assert page.locator("#job-notice [data-while-active]").count() == 0
    assert focused(page)["id"] == "retry-job"


def test_choices_made_faster_than_the_page_comes_back_apply_the_last_one(page, alice):
    # A second choice while the first's page was on its way was queued behind it, then dropped with
    # the form the first page replaced: the list showed the first choice, the drop-down too.
    log_in(page, "alice", next_url="/alerts/")
    held, passing = [], []
    page.route("**/alerts/?*", lambda route: route.continue_() if passing else held.append(route))
    page.focus("#filter-severity")

    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => document.querySelector('#filter-severity').selectedIndex === 1")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => document.querySelector('#filter-severity').selectedIndex === 2")
    last = page.input_value("#filter-severity")
    passing.append(True)
    for route in held:
        try:
            route.continue_()
        except Exception:  # the browser already gave up this request
            pass

    page.wait_for_url(f"**/alerts/?*severity={last}*")
    page.wait_for_function("() => document.activeElement.id === 'filter-severity'")
    assert page.input_value("#filter-severity") == last
