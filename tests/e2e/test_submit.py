"""Running a job by hand from the Jobs page, in a real browser."""

import pytest

from jobs.models import Job
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e]


def test_an_operator_runs_a_job_corrects_a_refusal_and_lands_on_its_page(page, alice, q_cluster):
    log_in(page, "alice", next_url="/jobs/")

    page.click("text=▶ Run a job…")
    page.select_option(".submit-form select[name=job_type]", "demo.sleep")
    page.fill(".submit-form textarea[name=parameters]", '{"seconds": "soon"}')
    page.click(".submit-form button[type=submit]")

    page.wait_for_selector(".notice-error >> text=Nothing submitted: parameters.seconds:")
    assert not Job.objects.exists()
    assert page.url.endswith("/jobs/")  # not the action's URL, which a reload would GET
    # The form stays open, with what was typed, to correct it.
    assert page.locator(".submit-form textarea[name=parameters]").input_value() == '{"seconds": "soon"}'
    page.fill(".submit-form textarea[name=parameters]", '{"seconds": 1, "steps": 1}')
    page.click(".submit-form button[type=submit]")

    page.wait_for_selector(".messages >> text=Submitted demo.sleep")
    job = Job.objects.get()
    assert page.url.endswith(f"/jobs/{job.id}/")
    assert (job.parameters, job.submitted_by) == ({"seconds": 1, "steps": 1}, "alice")

    # The message stays above the live status once the job has run: it must still be true then
    # (a drill read "it is queued" above "completed").
    page.wait_for_selector("#job-live h1 .badge-completed")
    assert page.locator(".messages").inner_text().strip() == "Submitted demo.sleep."
