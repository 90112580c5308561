"""Pausing a job type and resuming it from the Jobs page, in a real browser."""

import pytest

from jobs.manager import job_manager
from jobs.models import JobStatus, JobTypePause
from tests.e2e.conftest import log_in
from tests.factories import JobFactory

pytestmark = [pytest.mark.e2e]


def test_an_operator_pauses_a_failing_job_type_then_resumes_it(page, alice):
    JobFactory.create_batch(2, job_type="ai_matching", status=JobStatus.QUEUED)
    log_in(page, "alice", next_url="/jobs/")
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))

    page.click("text=❚❚ Pause a job type…")
    page.select_option(".pause-form select[name=job_type]", "ai_matching")
    page.fill(".pause-form input[name=reason]", "AI vendor down")
    page.click(".pause-form button[type=submit]")

    page.wait_for_selector(".messages >> text=Paused ai_matching")
    banner = page.locator(".paused-types")
    assert "ai_matching is paused" in banner.inner_text() and "“AI vendor down”" in banner.inner_text()
    assert "2 jobs held" in banner.inner_text()
    assert page.url.endswith("/jobs/?job_type=ai_matching")
    assert JobTypePause.objects.get().paused_by == "alice"

    banner.locator("button", has_text="Resume").click()
    page.wait_for_selector(".messages >> text=Resumed ai_matching: 2 held jobs queued again.")
    assert page.locator(".paused-types").count() == 0
    assert asked[0].startswith("Pause the chosen job type?") and asked[1].startswith(
        "Resume ai_matching? Its 2 held jobs"
    )
    assert not JobTypePause.objects.exists()


def test_the_banners_resume_button_still_works_after_the_list_has_refreshed(page, alice):
    """The banner comes back with every poll of the rows (a table body): its form must too."""
    JobFactory(job_type="ai_matching", status=JobStatus.QUEUED)
    JobTypePause.objects.create(job_type="ai_matching", paused_by="bob")
    log_in(page, "alice", next_url="/jobs/")
    page.on("dialog", lambda dialog: dialog.accept())

    for _ in range(2):  # two polls of the rows, each swapping the banner in again
        with page.expect_response(lambda response: response.request.headers.get("hx-target") == "job-rows"):
            pass
    page.locator(".paused-types button", has_text="Resume").click()

    page.wait_for_selector(".messages >> text=Resumed ai_matching: 1 held job queued again.")
    assert not JobTypePause.objects.exists()


def test_the_pause_message_stays_true_once_another_operator_resumes(page, alice):
    """The message stays above the live list: a drill read "its queued jobs wait, none starts until
    you resume it" after a colleague had resumed the type in the admin, its banner gone."""
    log_in(page, "alice", next_url="/jobs/")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("text=❚❚ Pause a job type…")
    page.select_option(".pause-form select[name=job_type]", "ai_matching")
    page.click(".pause-form button[type=submit]")
    page.wait_for_selector(".paused-types")

    job_manager.resume_job_type_sync("ai_matching", by="bob")

    page.wait_for_selector(".paused-types", state="detached")  # the next poll of the rows
    assert page.locator(".messages").inner_text().strip() == "Paused ai_matching."
