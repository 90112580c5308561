"""An operator at work, in a real browser: log in, watch a job move, open it, cancel it.

The jobs run on a real django-q2 cluster against the test database; nothing is faked.
"""

import contextlib
import re

import pytest

from jobs.manager import JobStateConflict, job_manager
from jobs.models import Job, JobStatus
from tests.conftest import wait_for
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


def progress_of(page, selector: str) -> int:
    return int(page.locator(selector).get_attribute("value"))


def test_an_operator_watches_a_job_progress_opens_it_and_cancels_it(page, alice, q_cluster, screenshot):
    job = job_manager.submit_job("demo.sleep", {"seconds": 40, "steps": 80})
    short_id = str(job.id)[:8]
    wait_for(lambda: Job.objects.get(id=job.id).progress > 0, message="the job to start")

    log_in(page, "alice", next_url="/jobs/")
    row = page.locator("#job-rows tr", has_text=short_id)
    bar = f"#job-rows progress[aria-label$='{short_id}']"
    first = progress_of(page, bar)
    page.evaluate("window.notReloaded = true")

    # The row moves by itself: htmx polls the table body; the page is never reloaded.
    page.wait_for_function(
        "([selector, first]) => Number(document.querySelector(selector).value) > first", arg=[bar, first]
    )
    assert page.evaluate("window.notReloaded") is True
    assert "running" in row.locator(".badge").inner_text()

    row.locator("a.job-link").click()
    page.wait_for_url(f"**/jobs/{job.id}/")
    live_bar = "#job-live progress"
    shown = progress_of(page, live_bar)
    page.wait_for_function(
        "([selector, shown]) => Number(document.querySelector(selector).value) > shown", arg=[live_bar, shown]
    )
    screenshot(page, "job-detail-running")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Cancel job")
    # (or "Cancelled.", if the worker stopped between the cancel and the page's reading of it)
    stopping = r"Cancel requested: it stops at its next progress report or cancellation check.*; it is not retried\.|Cancelled\."
    page.wait_for_selector(f"#job-notice >> text=/^({stopping})$/")
    # The worker stops at its next progress report; the page shows it without a reload.
    page.wait_for_selector("#job-live h1 .badge-cancelled")
    # "Cancel requested: it stops…" no longer holds: it goes (a drill saw it stay above "cancelled").
    page.wait_for_selector("#job-notice [data-while-active]", state="detached")
    assert "Cancel requested" not in page.locator("#job-notice").inner_text()
    assert Job.objects.get(id=job.id).status == JobStatus.CANCELLED
    # Cancelled: still retryable elsewhere (the API, the admin), so it polls at the slowest pace.
    assert page.locator("#job-live").get_attribute("hx-trigger").startswith("every 15s ")
    assert "cancelled" in page.locator(".timeline").inner_text()


def test_new_jobs_appear_in_the_list_and_finished_ones_leave_it(page, alice, q_cluster):
    log_in(page, "alice", next_url="/jobs/")
    page.wait_for_selector("#job-rows >> text=No active jobs.")
    page.evaluate("window.notReloaded = true")

    job = job_manager.submit_job("demo.sleep", {"seconds": 3, "steps": 3})
    row = f"#job-rows a[href='/jobs/{job.id}/']"
    page.wait_for_selector(row)
    page.wait_for_selector(row, state="detached", timeout=20_000)

    assert Job.objects.get(id=job.id).status == JobStatus.COMPLETED
    assert page.evaluate("window.notReloaded") is True


def test_filters_survive_live_updates_and_a_reload(page, alice, q_cluster):
    sleeper = job_manager.submit_job("demo.sleep", {"seconds": 30, "steps": 30})
    failing = job_manager.submit_job("demo.fail", {"error_class": "data", "fail_times": 1})
    wait_for(lambda: Job.objects.get(id=failing.id).status == JobStatus.FAILED, message="demo.fail to fail")

    log_in(page, "alice", next_url="/jobs/?view=finished")
    page.select_option("select[name=job_type]", "demo.fail")
    page.wait_for_url(re.compile(r".*job_type=demo\.fail.*"))  # the filter is in the URL
    page.wait_for_selector(f"#job-rows >> text={str(failing.id)[:8]}")

    # Let a couple of polls replace the table body: the filter still applies.
    stamp = page.locator("#job-list-meta .updated").inner_text()
    page.wait_for_function(
        "(stamp) => document.querySelector('#job-list-meta .updated').innerText !== stamp", arg=stamp
    )
    assert str(sleeper.id)[:8] not in page.locator("#job-rows").inner_text()

    page.reload()
    assert page.locator("select[name=job_type]").input_value() == "demo.fail"
    assert str(failing.id)[:8] in page.locator("#job-rows").inner_text()
    job_manager.cancel_job_sync(sleeper.id)


def test_a_viewer_sees_the_job_but_no_cancel_button(page, viewer, q_cluster):
    job = job_manager.submit_job("demo.sleep", {"seconds": 20, "steps": 20})
    log_in(page, "victor", next_url=f"/jobs/{job.id}/")
    page.wait_for_selector("#job-live h1")
    assert page.locator("text=Cancel job").count() == 0
    job_manager.cancel_job_sync(job.id)


def test_screenshots_of_the_main_pages(page, browser, live_server, alice, q_cluster, screenshot):
    """Real jobs in several states, then each main page (docs/screenshots/ with SAVE_SCREENSHOTS=1)."""
    failed = job_manager.submit_job("demo.fail", {"error_class": "data", "fail_times": 1}, submitted_by="alice")
    job_manager.submit_job("ai_matching", {"candidate_ids": [11, 12, 13], "job_posting_id": 42}, submitted_by="alice")
    recovered = job_manager.submit_job("demo.fail", {"error_class": "transient", "fail_times": 1})
    quick = job_manager.submit_job("demo.sleep", {"seconds": 0.5, "steps": 5})
    outcomes = ((failed, JobStatus.FAILED), (recovered, JobStatus.COMPLETED), (quick, JobStatus.COMPLETED))
    for job, outcome in outcomes:
        wait_for(lambda: Job.objects.get(id=job.id).status == outcome, message=f"{job.job_type} to be {outcome}")
    running = [job_manager.submit_job("demo.sleep", {"seconds": 60, "steps": 120}) for _ in range(2)]
    job_manager.submit_job("ai_matching", {"candidate_ids": list(range(500)), "job_posting_id": 7})  # waits its turn
    wait_for(lambda: all(Job.objects.get(id=job.id).progress >= 5 for job in running), message="jobs to run")

    page.goto("/accounts/login/")
    screenshot(page, "login")
    log_in(page, "alice")  # the overview's screenshot comes with a day of history: test_dashboard_pages.py
    page.goto("/jobs/")
    page.wait_for_selector("#job-rows .badge-running")
    screenshot(page, "jobs")
    page.goto("/jobs/?view=finished")
    screenshot(page, "jobs-finished")
    page.goto(f"/jobs/{failed.id}/")
    page.click("#traceback summary")
    screenshot(page, "job-detail-failed")

    dark = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=live_server.url, color_scheme="dark")
    dark_page = dark.new_page()
    log_in(dark_page, "alice", next_url="/jobs/")
    dark_page.wait_for_selector("#job-rows .badge-running")
    screenshot(dark_page, "jobs-dark")
    dark.close()
    for job in Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]):
        with contextlib.suppress(JobStateConflict):  # it may have finished since the query
            job_manager.cancel_job_sync(job.id)


def test_polling_keeps_the_operators_scroll_position(page, alice):
    from django.utils import timezone

    from tests.factories import JobFactory

    JobFactory.create_batch(45, completed=True, finished_at=timezone.now())
    log_in(page, "alice", next_url="/jobs/?view=finished")
    page.evaluate("window.scrollTo(0, 700)")
    stamp = page.locator("#job-list-meta .updated").inner_text()
    page.wait_for_function(
        "(stamp) => document.querySelector('#job-list-meta .updated').innerText !== stamp", arg=stamp
    )
    assert page.evaluate("window.scrollY") == 700
    assert page.locator("#job-rows tr").count() == 45
