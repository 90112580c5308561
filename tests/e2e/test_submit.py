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


def open_run_form(page, parameters: str) -> None:
    log_in(page, "alice", next_url="/jobs/")
    page.click("text=▶ Run a job…")
    page.select_option(".submit-form select[name=job_type]", "demo.sleep")
    page.fill(".submit-form textarea[name=parameters]", parameters)


def test_a_double_click_on_run_sends_one_request_and_makes_one_job(page, alice):
    open_run_form(page, '{"seconds": 1, "steps": 1}')
    held = []  # the submit, kept from the server until the second click is in
    page.route("**/jobs/submit/", lambda route: held.append(route))

    page.dblclick(".submit-form button[type=submit]")

    page.wait_for_function("document.querySelector('.submit-form button[type=submit]').disabled")
    assert len(held) == 1  # the second click hit a disabled button: nothing queued behind the first
    held[0].continue_()
    page.wait_for_selector(".messages >> text=Submitted demo.sleep")
    job = Job.objects.get()
    assert page.url.endswith(f"/jobs/{job.id}/")


def test_run_sent_again_after_its_answer_was_lost_lands_on_the_job_it_made(page, alice):
    """The server made the job, its answer never came back: Run again is the same form, one job."""
    open_run_form(page, '{"seconds": 1, "steps": 1}')

    def lose_the_answer(route):
        route.fetch(max_redirects=0)  # the server commits the job...
        route.abort("connectionreset")  # ...and the browser never hears of it

    page.route("**/jobs/submit/", lose_the_answer)
    with page.expect_event("requestfailed"):
        page.click(".submit-form button[type=submit]")
    page.unroute("**/jobs/submit/")
    job = Job.objects.get()
    page.wait_for_function("!document.querySelector('.submit-form button[type=submit]').disabled")
    page.click(".submit-form button[type=submit]")

    page.wait_for_selector(".messages >> text=This form was already sent: here is the job it started.")
    assert page.url.endswith(f"/jobs/{job.id}/")
    assert Job.objects.get() == job
