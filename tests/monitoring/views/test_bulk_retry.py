"""The finished list's "Retry these": once the cause is fixed (the AI service is back), the failed
jobs of a type are queued again in one click, as Sidekiq's "Retry all", not one page at a time."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import pytest
import time_machine
from django.test import Client

from jobs.models import Job, JobStatus
from monitoring.models import EventType, JobExecutionLog
from monitoring.views import jobs as jobs_views
from tests.factories import JobFactory
from tests.monitoring.views.conftest import htmx

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
FAILED_AI = {"view": "finished", "status": "failed", "job_type": "ai_matching", "window": "24h"}


def failed(job_type="ai_matching", *, hours_ago=1.0, **fields):
    finished = NOW - timedelta(hours=hours_ago)
    return JobFactory(job_type=job_type, failed=True, started_at=finished, finished_at=finished, **fields)


def statuses(*jobs) -> list[str]:
    return [Job.objects.get(id=job.id).status for job in jobs]


@time_machine.travel(NOW, tick=False)
def test_the_failed_jobs_of_the_filter_are_queued_again_and_the_others_left(alice_client):
    mine = [failed(hours_ago=1), failed(hours_ago=20)]
    too_old = failed(hours_ago=25)
    other_type = failed("demo.fail")
    cancelled = JobFactory(job_type="ai_matching", status=JobStatus.CANCELLED, finished_at=NOW - timedelta(hours=1))

    response = alice_client.post("/jobs/retry/", FAILED_AI, headers=htmx("job-list"))

    assert response.status_code == 200
    assert statuses(*mine) == [JobStatus.QUEUED, JobStatus.QUEUED]
    assert statuses(too_old, other_type, cancelled) == [JobStatus.FAILED, JobStatus.FAILED, JobStatus.CANCELLED]
    # Each as a manual retry of its own: a fresh retry budget, the operator named.
    job = Job.objects.get(id=mine[0].id)
    assert (job.message, job.max_attempts) == ("retry requested by alice", 6)
    retry = JobExecutionLog.objects.get(job=job, event_type=EventType.RETRY)
    assert retry.details == {"attempt": 4, "manual": True, "by": "alice"}
    # The list comes back as it was filtered, saying what was done.
    page = response.content.decode()
    assert page.strip().startswith('<section id="job-list">')
    assert "Queued again 2 failed jobs at 03:00:00 UTC: they were put on the Active list." in page
    assert "No finished jobs match these filters" in page  # none of them is failed any more


@time_machine.travel(NOW, tick=False)
def test_the_list_that_comes_back_keeps_polling_its_filters(alice_client):
    """A drill saw the list's next poll, two seconds after the retry, swap every active job into a
    list filtered on failed jobs: the answer to the POST polled /jobs/ without its filters."""
    failed()

    page = alice_client.post("/jobs/retry/", FAILED_AI, headers=htmx("job-list")).content.decode()

    poll = urlsplit(unescape(re.search(r'<tbody role="rowgroup" id="job-rows" hx-get="([^"]*)"', page).group(1)))
    assert (poll.path, dict(parse_qsl(poll.query))) == ("/jobs/", FAILED_AI)


@time_machine.travel(NOW, tick=False)
def test_a_job_that_changed_since_it_was_read_is_left_as_it_is(alice_client, monkeypatch):
    """Between the list read and its retry, another operator retried one (and it ran again)."""
    first, second = failed(), failed(hours_ago=2)
    finished_jobs = jobs_views.selectors.finished_jobs

    def read_then_changed(**filters):
        jobs, more = finished_jobs(**filters)
        Job.objects.filter(id=second.id).update(attempts=4)  # failed again on attempt 4 meanwhile
        return jobs, more

    monkeypatch.setattr(jobs_views.selectors, "finished_jobs", read_then_changed)
    page = alice_client.post("/jobs/retry/", FAILED_AI, headers=htmx("job-list")).content.decode()

    assert statuses(first, second) == [JobStatus.QUEUED, JobStatus.FAILED]
    assert "Queued again 1 failed job at 03:00:00 UTC: it was put on the Active list; 1 had changed since" in page


@time_machine.travel(NOW, tick=False)
def test_one_click_retries_at_most_the_limit_the_most_recent_first_and_says_more_match(alice_client, monkeypatch):
    monkeypatch.setattr(jobs_views, "MAX_BULK_RETRY", 2)
    oldest, middle, newest = failed(hours_ago=3), failed(hours_ago=2), failed(hours_ago=1)

    page = alice_client.post("/jobs/retry/", FAILED_AI, headers=htmx("job-list")).content.decode()

    assert statuses(oldest, middle, newest) == [JobStatus.FAILED, JobStatus.QUEUED, JobStatus.QUEUED]
    assert "More match: only the 2 most recent were retried; retry again for the rest." in page
    again = alice_client.post("/jobs/retry/", FAILED_AI, headers=htmx("job-list")).content.decode()
    assert statuses(oldest) == [JobStatus.QUEUED]
    assert "Queued again 1 failed job" in again and "More match" not in again


@time_machine.travel(NOW, tick=False)
def test_without_htmx_it_redirects_to_the_same_list_with_the_outcome(alice_client):
    job = failed()
    response = alice_client.post("/jobs/retry/", FAILED_AI)
    assert response.status_code == 302
    assert response["Location"] == "/jobs/?view=finished&job_type=ai_matching&status=failed&window=24h"
    assert statuses(job) == [JobStatus.QUEUED]
    assert "Queued again 1 failed job" in alice_client.get(response["Location"]).content.decode()


@time_machine.travel(NOW, tick=False)
def test_nothing_matching_any_more_is_said_so(alice_client):
    page = alice_client.post("/jobs/retry/", FAILED_AI, headers=htmx("job-list")).content.decode()
    assert "No failed job matches these filters any more: nothing retried." in page


@pytest.mark.parametrize(
    "change, refused",
    [
        ({"status": "completed"}, "status: only failed or cancelled jobs can be retried: filter on one of them"),
        ({"status": ""}, "status: only failed or cancelled jobs can be retried"),
        ({"window": "1y"}, "window: Select a valid choice. 1y is not one of the available choices."),
        ({"q": "xyz"}, "q: a job id is hex digits and dashes"),
    ],
)
@time_machine.travel(NOW, tick=False)
def test_filters_that_cannot_be_retried_are_a_400_naming_the_field_and_retry_nothing(alice_client, change, refused):
    job = failed()
    response = alice_client.post("/jobs/retry/", FAILED_AI | change, headers=htmx("job-list"))
    assert response.status_code == 400
    assert "Nothing retried: " + refused in response.content.decode()
    assert statuses(job) == [JobStatus.FAILED]


def test_a_filter_given_twice_is_refused_too(alice_client):
    job = failed()
    response = alice_client.post(
        "/jobs/retry/", "status=failed&status=cancelled&view=finished", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert "status: given 2 times; give it once" in response.content.decode()
    assert statuses(job) == [JobStatus.FAILED]


@time_machine.travel(NOW, tick=False)
def test_the_button_shows_on_failed_or_cancelled_lists_to_those_allowed_to_retry(alice_client, viewer):
    failed("<b>x</b>")
    page = alice_client.get("/jobs/?view=finished&status=failed&job_type=%3Cb%3Ex%3C/b%3E").content.decode()
    assert "↻ Retry these failed jobs" in page
    confirm = re.search(r'hx-confirm="([^"]*)"', page.split('class="bulk-retry"')[1]).group(1)
    assert confirm.startswith("Retry every failed &lt;b&gt;x&lt;/b&gt; job that finished in the last 24h?")
    assert '<input type="hidden" name="job_type" value="&lt;b&gt;x&lt;/b&gt;">' in page
    # Not on other lists, nor to those who may only look.
    assert "Retry these" not in alice_client.get("/jobs/?view=finished").content.decode()
    assert "Retry these" not in alice_client.get("/jobs/?view=finished&status=completed").content.decode()
    viewer_client = Client()
    viewer_client.force_login(viewer)
    assert "Retry these" not in viewer_client.get("/jobs/?view=finished&status=failed").content.decode()


def test_those_who_may_only_look_are_refused(viewer_client):
    job = failed()
    assert viewer_client.post("/jobs/retry/", FAILED_AI).status_code == 403
    assert statuses(job) == [JobStatus.FAILED]


def test_anonymous_posts_go_to_login_and_gets_are_refused(client):
    job = failed()
    assert client.post("/jobs/retry/", FAILED_AI)["Location"].startswith("/accounts/login/")
    assert client.get("/jobs/retry/").status_code in (302, 405)
    assert statuses(job) == [JobStatus.FAILED]


@time_machine.travel(NOW, tick=False)
def test_csrf_holds(alice):
    job = failed()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.post("/jobs/retry/", FAILED_AI).status_code == 403
    assert statuses(job) == [JobStatus.FAILED]

    page = browser.get("/jobs/?view=finished&status=failed").content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    response = browser.post("/jobs/retry/", FAILED_AI, headers={**htmx("job-list"), "X-CSRFToken": token})
    assert response.status_code == 200
    assert statuses(job) == [JobStatus.QUEUED]


def test_a_pinned_list_retries_the_jobs_it_shows_not_those_failed_since(alice_client):
    """On page 2 of a list pinned at 03:00 (`until`), "Retry these" retried the jobs failed after
    it too, which the reader had not seen."""
    with time_machine.travel(NOW, tick=False):
        shown = failed(hours_ago=1)
    later = NOW + timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        since = JobFactory(job_type="ai_matching", failed=True, started_at=later, finished_at=later)
        pinned = FAILED_AI | {"until": "2026-11-29T03:00:00.000000Z"}
        page = alice_client.get("/jobs/", pinned).content.decode()
        form = page.split('class="bulk-retry"')[1].split("</form>")[0]
        assert '<input type="hidden" name="until" value="2026-11-29T03:00:00.000000Z">' in form
        confirm = re.search(r'hx-confirm="([^"]*)"', form).group(1)
        assert confirm.startswith("Retry every failed ai_matching job that finished in the 24h before 03:00:00 UTC?")

        response = alice_client.post("/jobs/retry/", pinned, headers=htmx("job-list"))

    assert response.status_code == 200
    assert statuses(shown, since) == [JobStatus.QUEUED, JobStatus.FAILED]
    poll = urlsplit(unescape(re.search(r'id="job-rows" hx-get="([^"]*)"', response.content.decode()).group(1)))
    assert dict(parse_qsl(poll.query)) == pinned  # the list that comes back is still pinned
