"""Cancel and Retry from the dashboard: POST with CSRF, the permission, conflicts explained."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from jobs.models import Job, JobStatus
from tests.factories import JobFactory
from tests.monitoring.views.conftest import htmx

pytestmark = pytest.mark.django_db


def status_of(job):
    return Job.objects.get(id=job.id).status


def test_cancelling_a_queued_job_redirects_to_it_with_a_message(alice_client):
    job = JobFactory(status=JobStatus.QUEUED)

    response = alice_client.post(f"/jobs/{job.id}/cancel/")

    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.id}/"
    assert status_of(job) == JobStatus.CANCELLED
    assert Job.objects.get(id=job.id).message == "cancelled by alice"
    page = alice_client.get(response["Location"]).content.decode()
    assert "Cancelled." in page and "Cancel requested" not in page  # it is, at once


def test_cancelling_a_queued_job_with_htmx_says_it_is_cancelled(alice_client):
    job = JobFactory(status=JobStatus.QUEUED)

    response = alice_client.post(f"/jobs/{job.id}/cancel/", headers=htmx("job-live"))

    notice = response.content.decode().split('<div id="job-notice"')[1]
    assert "Cancelled." in notice and "Cancel requested" not in notice


def test_cancelling_with_htmx_swaps_in_the_updated_job_and_a_notice(alice_client):
    job = JobFactory(running=True)

    response = alice_client.post(f"/jobs/{job.id}/cancel/", headers=htmx("job-live"))

    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="job-live"')
    assert "cancel requested" in page and "Cancel job" not in page  # asked once is enough
    assert '<div id="job-notice" hx-swap-oob="true"' in page
    assert "Cancel requested: it stops at its next progress report or cancellation check" in page  # it runs until then
    assert Job.objects.get(id=job.id).cancel_requested_at is not None


def test_an_outcome_that_holds_while_the_job_runs_is_marked_to_go_when_it_stops(alice_client):
    """Drill: "Cancel requested: it stops … at its timeout in 7m 58s" stayed above the job's
    "cancelled" badge. Such a notice is marked, and so is the job's live part once the job has
    stopped: dashboard.js removes the one when a poll brings the other (tests/e2e/test_dashboard.py)."""
    running, queued = JobFactory(running=True), JobFactory(status=JobStatus.QUEUED)

    requested = alice_client.post(f"/jobs/{running.id}/cancel/", headers=htmx("job-live")).content.decode()
    cancelled = alice_client.post(f"/jobs/{queued.id}/cancel/", headers=htmx("job-live")).content.decode()
    Job.objects.filter(id=running.id).update(status=JobStatus.CANCELLED, finished_at=timezone.now())
    stopped = alice_client.get(f"/jobs/{running.id}/", headers=htmx("job-live")).content.decode()

    assert "data-while-active>Cancel requested" in requested and "data-stopped" not in requested
    assert "data-while-active" not in cancelled  # "Cancelled." stays true
    assert stopped.lstrip().startswith('<div id="job-live" class="status-cancelled" data-stopped')


@time_machine.travel(datetime(2026, 12, 6, 3, 0, tzinfo=UTC), tick=False)
def test_cancelling_a_silent_running_job_says_it_stops_at_its_timeout_at_the_latest(alice_client):
    """Drill: a job silent for 3 minutes was told "it stops at its next progress report",
    which a stuck job never sends. It stops at its timeout at the latest, and is not retried."""
    started = timezone.now() - timedelta(minutes=3)
    job = JobFactory(running=True, started_at=started, updated_at=started)  # demo.sleep: 10 min timeout

    response = alice_client.post(f"/jobs/{job.id}/cancel/", headers=htmx("job-live"))

    notice = response.content.decode().split('<div id="job-notice"')[1].split("</p>")[0]
    assert (
        "Cancel requested: it stops at its next progress report or cancellation check, "
        "at the latest at its timeout in 7m 00s; it is not retried."
    ) in notice


def test_after_an_action_focus_goes_to_its_outcome_not_to_the_page(alice_client):
    """The swap removed the focused button: the next Tab went to the logo. htmx focuses an
    [autofocus] element it swaps in; tabindex -1 makes the message focusable."""
    job = JobFactory(failed=True)
    retried = alice_client.post(f"/jobs/{job.id}/retry/", {"attempt": "4"}, headers=htmx("job-live")).content.decode()
    again = alice_client.post(f"/jobs/{job.id}/retry/", {"attempt": "4"}, headers=htmx("job-live")).content.decode()

    for part in (retried, again):
        notice = part.split('<div id="job-notice" hx-swap-oob="true"')[1]
        assert '<p class="notice' in notice and 'tabindex="-1" autofocus' in notice.split("</p>")[0]
    # Polls replace the buttons too: an id lets htmx give the focus back to the new one.
    assert '<button type="submit" id="cancel-job"' in retried


def test_cancelling_a_finished_job_is_a_409_explained_on_the_page(alice_client):
    job = JobFactory(completed=True)

    full = alice_client.post(f"/jobs/{job.id}/cancel/")
    partial = alice_client.post(f"/jobs/{job.id}/cancel/", headers=htmx("job-live"))

    for response in (full, partial):
        assert response.status_code == 409
        assert "only queued, running or retrying jobs can be cancelled" in response.content.decode()
    assert "<html" in full.content.decode() and "<html" not in partial.content.decode()
    assert status_of(job) == JobStatus.COMPLETED


def test_retrying_a_failed_job_queues_its_next_attempt(alice_client):
    job = JobFactory(failed=True)  # 3 attempts so far

    response = alice_client.post(f"/jobs/{job.id}/retry/", {"attempt": "4"})

    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.message) == (JobStatus.QUEUED, "retry requested by alice")


def test_a_second_click_on_retry_is_a_conflict_not_a_second_attempt(alice_client):
    job = JobFactory(failed=True)
    page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    assert '<input type="hidden" name="attempt" value="4">' in page

    assert alice_client.post(f"/jobs/{job.id}/retry/", {"attempt": "4"}, headers=htmx("job-live")).status_code == 200
    again = alice_client.post(f"/jobs/{job.id}/retry/", {"attempt": "4"}, headers=htmx("job-live"))

    assert again.status_code == 409
    assert "only failed, cancelled or retrying jobs can be retried" in again.content.decode()


# "²".isdigit() is true, int("²") fails; int() refuses more than 4,300 digits
@pytest.mark.parametrize("attempt", ["<b>4</b>", "²", "-1", "1.0", "9" * 5000])
def test_a_malformed_attempt_is_a_400_naming_the_field(alice_client, attempt):
    job = JobFactory(failed=True)
    response = alice_client.post(f"/jobs/{job.id}/retry/", {"attempt": attempt})
    assert response.status_code == 400
    assert "attempt: must be a whole number" in response.content.decode()
    assert status_of(job) == JobStatus.FAILED


def test_actions_on_an_unknown_job_are_404(alice_client):
    assert alice_client.post("/jobs/00000000-0000-4000-8000-000000000000/cancel/").status_code == 404


def test_a_viewer_is_refused_with_403_and_nothing_changes(viewer_client):
    job = JobFactory(running=True)
    failed = JobFactory(failed=True)

    assert viewer_client.post(f"/jobs/{job.id}/cancel/").status_code == 403
    assert viewer_client.post(f"/jobs/{failed.id}/retry/").status_code == 403
    assert Job.objects.get(id=job.id).cancel_requested_at is None
    assert status_of(failed) == JobStatus.FAILED


def test_a_refused_htmx_action_says_which_permission_is_missing_in_plain_text(viewer_client):
    """dashboard.js shows this text as it is: a short reason, no page to parse, nothing to inject."""
    failed = JobFactory(failed=True)

    response = viewer_client.post(f"/jobs/{failed.id}/retry/", headers=htmx("job-live"))

    assert response.status_code == 403
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == (
        "You are logged in as victor, without the permission this action needs (jobs.change_job). "
        "Ask an administrator to grant it."
    )
    # Without htmx (a plain form post, a page opened by hand): the page that says the same.
    page = viewer_client.post(f"/jobs/{failed.id}/retry/")
    assert page.status_code == 403 and page["Content-Type"].startswith("text/html")
    assert "without the permission this page needs" in page.content.decode()


def test_anonymous_posts_go_to_login_and_gets_are_refused(client):
    job = JobFactory(running=True)
    assert client.post(f"/jobs/{job.id}/cancel/")["Location"].startswith("/accounts/login/")
    assert client.get(f"/jobs/{job.id}/cancel/").status_code == 405
    assert Job.objects.get(id=job.id).cancel_requested_at is None


def test_csrf_holds(alice):
    job = JobFactory(running=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)

    assert browser.post(f"/jobs/{job.id}/cancel/").status_code == 403
    assert Job.objects.get(id=job.id).cancel_requested_at is None

    # The token the page renders, sent as htmx sends it (the X-CSRFToken header from hx-headers).
    page = browser.get(f"/jobs/{job.id}/").content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    response = browser.post(f"/jobs/{job.id}/cancel/", headers={**htmx("job-live"), "X-CSRFToken": token})
    assert response.status_code == 200
    assert Job.objects.get(id=job.id).cancel_requested_at is not None


def test_an_htmx_action_with_the_token_of_an_older_login_is_told_to_reload(alice):
    """Drill: logged in again in another tab (which rotates the CSRF token), Retry in the old tab
    said only "The server refused this action (403 Forbidden)"."""
    job = JobFactory(failed=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    page = browser.get(f"/jobs/{job.id}/").content.decode()
    old_token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    # Another tab logs out and in again through the form: a new login rotates the token.
    assert browser.post("/accounts/logout/", {"csrfmiddlewaretoken": old_token}).status_code == 302
    form = browser.get("/accounts/login/").content.decode()
    login_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    credentials = {"username": "alice", "password": "correct horse battery staple"}
    assert browser.post("/accounts/login/", {**credentials, "csrfmiddlewaretoken": login_token}).status_code == 302

    response = browser.post(f"/jobs/{job.id}/retry/", headers={**htmx("job-live"), "X-CSRFToken": old_token})

    assert response.status_code == 403
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == (
        "The page is out of date (you logged in again elsewhere?): reload it and try again."
    )
    assert status_of(job) == JobStatus.FAILED
    # A plain form post gets Django's own explanation, as before.
    plain = browser.post(f"/jobs/{job.id}/retry/", {"csrfmiddlewaretoken": old_token})
    assert plain.status_code == 403 and b"CSRF verification failed" in plain.content
