"""From an error group to its jobs: the Errors page links each group to the finished jobs whose
last error it is (`/jobs/?view=finished&error=<fingerprint>`), where "Retry these" queues exactly
those again once the cause is fixed. The API's finished list takes the same filter."""

from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
import time_machine
from django.test import Client

from jobs.errors import classify_error, error_details
from jobs.models import Job, JobStatus
from monitoring.models import EventType
from tests.factories import JobExecutionLogFactory, JobFactory
from tests.monitoring.views.conftest import htmx

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def raised(error: Exception) -> dict:
    try:
        raise error
    except Exception as e:
        return error_details(e, classify_error(e), retryable=False)


TIMEOUT = raised(TimeoutError("AI service timed out after 30 s"))
BAD_RECORD = raised(ValueError("candidate record 17 is malformed"))


def failed_with(details: dict, *, job_type="ai_matching", hours_ago=1.0) -> Job:
    """A job that failed for good with this error, and the error event its last attempt recorded."""
    finished = NOW - timedelta(hours=hours_ago)
    last_error = {key: value for key, value in details.items() if key != "traceback"}
    summary = f"{details['type']}: {details['message']}"
    job = JobFactory(job_type=job_type, failed=True, finished_at=finished, last_error=last_error, message=summary)
    JobExecutionLogFactory(job=job, event_type=EventType.ERROR, timestamp=finished, error_details=details)
    return job


def listed(response) -> set:
    return {job.id for job in response.context["page"].object_list}


@time_machine.travel(NOW, tick=False)
def test_the_finished_list_shows_only_the_jobs_whose_last_error_has_that_fingerprint(alice_client):
    timeouts = [failed_with(TIMEOUT), failed_with(TIMEOUT, hours_ago=5, job_type="demo.fail")]
    bad_record = failed_with(BAD_RECORD)
    JobFactory(status=JobStatus.COMPLETED, finished_at=NOW - timedelta(hours=1))

    response = alice_client.get(f"/jobs/?view=finished&error={TIMEOUT['fingerprint']}")

    assert response.status_code == 200
    assert listed(response) == {job.id for job in timeouts}
    page = response.content.decode()
    # The filter stays visible and removable, and travels with the other filters.
    assert f'<input type="hidden" name="error" value="{TIMEOUT["fingerprint"]}">' in page
    chip = page.split('<span class="filter-chip">')[1].split("</span></span>")[0]
    assert f'Last error <code>{TIMEOUT["fingerprint"]}</code> <bdi class="muted"' in chip
    assert "TimeoutError: AI service timed out after 30 s" in chip  # what the hex stands for
    assert '<a href="/jobs/?view=finished" title="Any error"' in page
    assert bad_record.id not in listed(alice_client.get(f"/jobs/?view=finished&error={TIMEOUT['fingerprint']}"))
    typed = alice_client.get(f"/jobs/?view=finished&job_type=demo.fail&error={TIMEOUT['fingerprint'].upper()}")
    assert listed(typed) == {timeouts[1].id}
    assert f"<code>{TIMEOUT['fingerprint']}</code>" in typed.content.decode()  # as it was matched: lowercase


@time_machine.travel(NOW, tick=False)
def test_the_chip_takes_the_errors_text_from_a_failed_job_only(alice_client):
    """A job that failed so, then succeeded on a retry, keeps that last error; its message says "completed"."""
    recovered = JobFactory(
        status=JobStatus.COMPLETED, finished_at=NOW - timedelta(minutes=5), message="completed", last_error=TIMEOUT
    )

    alone = alice_client.get(f"/jobs/?view=finished&error={TIMEOUT['fingerprint']}")

    assert listed(alone) == {recovered.id}
    assert f"<code>{TIMEOUT['fingerprint']}</code> <a href=" in alone.content.decode()  # no text, not "completed"


@time_machine.travel(NOW, tick=False)
def test_the_chips_any_error_link_keeps_the_filters_as_they_are_now(alice_client):
    """The chip stood in the filter form, outside the swapped list: after the window was changed
    (an htmx swap of the list alone) its link still led back to the window it was opened with."""
    failed_with(TIMEOUT, hours_ago=30)
    swapped = alice_client.get(
        "/jobs/",
        {"view": "finished", "window": "7d", "job_type": "ai_matching", "error": TIMEOUT["fingerprint"]},
        headers=htmx("job-list"),
    ).content.decode()
    assert '<a href="/jobs/?view=finished&amp;job_type=ai_matching&amp;window=7d" title="Any error"' in swapped


def test_a_malformed_fingerprint_or_the_active_list_is_a_400_naming_error(alice_client):
    for query, message in [
        ("view=finished&error=<b>x</b>", "an error fingerprint is 16 hex digits"),
        ("view=finished&error=0123456789abcdef0", "Ensure this value has at most 16 characters"),
        (f"error={TIMEOUT['fingerprint']}", "only finished jobs are filtered by their last error"),
    ]:
        response = alice_client.get(f"/jobs/?{query}")
        assert response.status_code == 400, query
        page = response.content.decode()
        assert "(<code>error</code>): " in page and message in page, query
        assert "<b>x</b>" not in page


@time_machine.travel(NOW, tick=False)
def test_retry_these_queues_again_only_the_jobs_that_failed_with_that_error(alice_client):
    timeouts = [failed_with(TIMEOUT), failed_with(TIMEOUT, hours_ago=3)]
    bad_record = failed_with(BAD_RECORD)
    filters = {"view": "finished", "status": "failed", "window": "24h", "error": TIMEOUT["fingerprint"]}

    listed_page = alice_client.get("/jobs/", filters).content.decode()
    assert f'<input type="hidden" name="error" value="{TIMEOUT["fingerprint"]}">' in listed_page.split("bulk-retry")[1]
    assert f"whose last error is {TIMEOUT['fingerprint']}?" in listed_page  # the confirm names it

    response = alice_client.post("/jobs/retry/", filters, headers=htmx("job-list"))

    assert "Queued again 2 failed jobs" in response.content.decode()
    assert [Job.objects.get(id=job.id).status for job in timeouts] == [JobStatus.QUEUED] * 2
    assert Job.objects.get(id=bad_record.id).status == JobStatus.FAILED

    refused = alice_client.post("/jobs/retry/", {**filters, "error": "nope"}, headers=htmx("job-list"))
    assert refused.status_code == 400 and "Nothing retried: error: an error fingerprint" in refused.content.decode()
    # Two refusals of one field read as two (they ran together: "… active statuses only failed …").
    both = alice_client.post("/jobs/retry/", {**filters, "view": "active"}, headers=htmx("job-list"))
    assert "status: &#x27;failed&#x27; is not one of the active statuses; only" in both.content.decode()


@time_machine.travel(NOW, tick=False)
def test_each_error_group_on_the_errors_page_links_its_failed_jobs(alice_client):
    failed_with(TIMEOUT)
    failed_with(TIMEOUT, hours_ago=2)

    page = alice_client.get("/errors/?timeframe=24h&job_type=ai_matching").content.decode()

    link = (
        f'href="/jobs/?view=finished&amp;status=failed&amp;window=24h&amp;error={TIMEOUT["fingerprint"]}'
        '&amp;job_type=ai_matching"'
    )
    assert f'{link} title="Jobs failed for good now with this error as their last' in page
    assert "2 failed for good →" in page
    followed = alice_client.get(
        f"/jobs/?view=finished&status=failed&window=24h&error={TIMEOUT['fingerprint']}&job_type=ai_matching"
    )
    assert len(followed.context["page"].object_list) == 2


@time_machine.travel(NOW, tick=False)
def test_the_api_finished_list_takes_the_same_filter(client, alice, bearer, django_assert_max_num_queries):
    timeout = failed_with(TIMEOUT)
    failed_with(BAD_RECORD)

    headers = bearer(alice)
    with django_assert_max_num_queries(6):  # token and user, permissions, last use, one scan per finished status
        response = client.get(
            f"/api/monitoring/jobs/finished?window=24h&error={TIMEOUT['fingerprint']}", headers=headers
        )

    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [str(timeout.id)]
    refused = client.get("/api/monitoring/jobs/finished?error=xyz", headers=headers)
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {
            "field": "error",
            "message": "an error fingerprint is 16 hex digits, as the Errors page's groups (and the API's "
            "top_errors) give it",
        }
    ]


def test_anonymous_visitors_get_the_login_page_not_the_list():
    response = Client().get(f"/jobs/?view=finished&error={TIMEOUT['fingerprint']}")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def failed_with_it_link(page: str) -> str | None:
    """The href of a job page's "every job that failed with it" link, if there is one."""
    if 'id="failed-with-it"' not in page:
        return None
    return unescape(page.split('id="failed-with-it"')[0].rsplit('<a href="', 1)[1].split('"')[0])


@time_machine.travel(NOW, tick=False)
def test_a_failed_jobs_page_links_the_jobs_its_error_hit_where_they_are_retried_together(alice_client):
    """From the job an operator reached first (a log line, the overview's failures) to every job
    the same error failed, in one click: the list with "Retry these failed jobs"."""
    job, other = failed_with(TIMEOUT, hours_ago=3), failed_with(TIMEOUT, hours_ago=0.5, job_type="demo.fail")
    bad_record = failed_with(BAD_RECORD, hours_ago=0.5)

    link = failed_with_it_link(alice_client.get(f"/jobs/{job.id}/").content.decode())

    # The shortest window that still lists this job (3 h ago: 24h), every job type.
    assert link == f"/jobs/?view=finished&status=failed&window=24h&error={TIMEOUT['fingerprint']}"
    following = alice_client.get(link)
    assert listed(following) == {job.id, other.id}
    assert bad_record.id not in listed(following)
    assert 'id="retry-jobs"' in following.content.decode()
    assert failed_with_it_link(alice_client.get(f"/jobs/{other.id}/").content.decode()).endswith(
        f"window=1h&error={TIMEOUT['fingerprint']}"
    )


@time_machine.travel(NOW, tick=False)
def test_a_job_page_links_no_list_that_could_not_show_it(alice_client):
    old = failed_with(TIMEOUT, hours_ago=24 * 8)  # past the longest window (7d)
    recovered = JobFactory(status=JobStatus.COMPLETED, finished_at=NOW, last_error=TIMEOUT)  # not failed now
    unmarked = failed_with({**TIMEOUT, "fingerprint": ""})  # recorded before fingerprints existed

    for job in (old, recovered, unmarked):
        assert failed_with_it_link(alice_client.get(f"/jobs/{job.id}/").content.decode()) is None
    week = failed_with(TIMEOUT, hours_ago=24 * 6)
    assert "window=7d" in failed_with_it_link(alice_client.get(f"/jobs/{week.id}/").content.decode())


# --- from a job failure alert ----------------------------------------------------------------


def alert_for(*jobs):
    """The job failure alert these failures raise and are counted into, each at its finishing time."""
    from alerts.manager import alert_manager

    for job in jobs:
        with time_machine.travel(job.finished_at, tick=False):
            alert = alert_manager.handle_job_finished(job)
    return alert


def failed_with_latest_error_link(page: str) -> str | None:
    if 'id="failed-with-latest-error"' not in page:
        return None
    return unescape(page.split('id="failed-with-latest-error" href="')[1].split('"')[0])


@time_machine.travel(NOW, tick=False)
def test_a_job_failure_alert_links_the_jobs_its_latest_error_failed_where_they_are_retried(alice_client):
    """The 3 a.m. drill: from the alert to "Retry these failed jobs" took the Errors page and a
    search for the group. The alert's page links them, back to when it was raised."""
    first, latest = failed_with(TIMEOUT, hours_ago=3), failed_with(TIMEOUT, hours_ago=0.5)
    alert = alert_for(first, latest)

    link = failed_with_latest_error_link(alice_client.get(f"/alerts/{alert.id}/").content.decode())

    assert link == f"/jobs/?view=finished&status=failed&window=24h&error={TIMEOUT['fingerprint']}"
    following = alice_client.get(link)
    assert listed(following) == {first.id, latest.id}
    assert 'id="retry-jobs"' in following.content.decode()


@time_machine.travel(NOW, tick=False)
def test_an_alert_links_no_jobs_list_that_could_not_show_them_or_that_its_reader_may_not_see(client, alice):
    from monitoring.permissions import VIEW_ALERTS
    from tests.factories import UserFactory

    months_old = alert_for(failed_with(TIMEOUT, hours_ago=24 * 30, job_type="demo.fail"))
    since_a_month = alert_for(failed_with(BAD_RECORD, hours_ago=24 * 30), failed_with(BAD_RECORD, hours_ago=2))
    alerts_only = UserFactory(username="pager", permissions=[VIEW_ALERTS])

    client.force_login(alice)
    assert failed_with_latest_error_link(client.get(f"/alerts/{months_old.id}/").content.decode()) is None
    # Raised a month ago, failing still: the longest window the list has.
    assert "window=7d" in failed_with_latest_error_link(client.get(f"/alerts/{since_a_month.id}/").content.decode())
    client.force_login(alerts_only)
    page = client.get(f"/alerts/{since_a_month.id}/")
    assert page.status_code == 200 and failed_with_latest_error_link(page.content.decode()) is None


# --- to the error's own group on the Errors page ---------------------------------------------


def link_of(page: str, element_id: str) -> str | None:
    """The href of the link with this id (written `id="…" href="…"` or `href="…" id="…"`), if any."""
    if f'id="{element_id}"' not in page:
        return None
    tag = page.split(f'id="{element_id}"')[0].rsplit("<a ", 1)[1] + page.split(f'id="{element_id}"')[1].split(">")[0]
    return unescape(tag.split('href="')[1].split('"')[0])


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    "hours_ago, timeframe", [(0.2, "15m"), (3, "6h"), (23, "24h"), (24 * 6, "7d"), (24 * 20, "30d")]
)
def test_a_failed_jobs_page_links_its_errors_history(alice_client, hours_ago, timeframe):
    """How often, since when, in which job types, its alerts: one click from the failed job, over
    the shortest timeframe of the Errors page that still shows this failure."""
    job = failed_with(TIMEOUT, hours_ago=hours_ago)
    failed_with(TIMEOUT, hours_ago=hours_ago / 2, job_type="demo.fail")
    failed_with(BAD_RECORD, hours_ago=hours_ago / 2)

    link = link_of(alice_client.get(f"/jobs/{job.id}/").content.decode(), "error-history")

    assert link == f"/errors/?timeframe={timeframe}&error={TIMEOUT['fingerprint']}"
    following = alice_client.get(link)
    assert following.status_code == 200
    (group,) = following.context["top_errors"]
    assert (group["count"], group["job_types"]) == (2, ["ai_matching", "demo.fail"])


@time_machine.travel(NOW, tick=False)
def test_a_job_page_links_no_error_history_the_errors_page_could_not_show_or_its_reader_may_not_see(client, alice):
    from monitoring.permissions import CONTROL_JOBS, VIEW_ALERTS, VIEW_JOBS
    from tests.factories import UserFactory

    old = failed_with(TIMEOUT, hours_ago=24 * 31)  # past the longest timeframe (30d)
    recovered = JobFactory(status=JobStatus.COMPLETED, finished_at=NOW, last_error=TIMEOUT)  # not failed now
    unmarked = failed_with({**TIMEOUT, "fingerprint": ""})  # recorded before fingerprints existed
    client.force_login(alice)
    for job in (old, recovered, unmarked):
        assert link_of(client.get(f"/jobs/{job.id}/").content.decode(), "error-history") is None

    recent = failed_with(TIMEOUT, hours_ago=1)
    client.force_login(UserFactory(username="jobs-only", permissions=[VIEW_JOBS, VIEW_ALERTS, CONTROL_JOBS]))
    page = client.get(f"/jobs/{recent.id}/").content.decode()
    assert link_of(page, "failed-with-it") and link_of(page, "error-history") is None


@time_machine.travel(NOW, tick=False)
def test_a_job_failure_alert_links_its_latest_errors_group(client, alice):
    from monitoring.permissions import VIEW_ALERTS, VIEW_JOBS
    from tests.factories import UserFactory

    first, latest = failed_with(TIMEOUT, hours_ago=3), failed_with(TIMEOUT, hours_ago=0.5)
    alert = alert_for(first, latest)
    months_old = alert_for(failed_with(BAD_RECORD, hours_ago=24 * 31, job_type="demo.fail"))
    since_long_ago = alert_for(failed_with(TIMEOUT, hours_ago=24 * 40, job_type="imports"))
    alert_for(failed_with(TIMEOUT, hours_ago=1, job_type="imports"))

    client.force_login(alice)
    page = client.get(f"/alerts/{alert.id}/").content.decode()
    assert link_of(page, "latest-error-group") == f"/errors/?timeframe=6h&error={TIMEOUT['fingerprint']}"
    assert link_of(page, "failed-with-latest-error")  # beside it
    assert link_of(client.get(f"/alerts/{months_old.id}/").content.decode(), "latest-error-group") is None
    # Raised long ago, failing still: the longest timeframe.
    link = link_of(client.get(f"/alerts/{since_long_ago.id}/").content.decode(), "latest-error-group")
    assert link == f"/errors/?timeframe=30d&error={TIMEOUT['fingerprint']}"

    client.force_login(UserFactory(username="pager", permissions=[VIEW_ALERTS, VIEW_JOBS]))
    page = client.get(f"/alerts/{alert.id}/")
    assert page.status_code == 200 and link_of(page.content.decode(), "latest-error-group") is None


@time_machine.travel(NOW, tick=False)
def test_an_alert_whose_failed_jobs_were_all_retried_says_so_instead_of_linking_an_empty_list(
    alice_client, django_assert_max_num_queries
):
    first, latest = failed_with(TIMEOUT, hours_ago=3), failed_with(TIMEOUT, hours_ago=0.5)
    alert = alert_for(first, latest)
    with django_assert_max_num_queries(7):  # session, user, permissions, alert, deliveries, jobs, failed still
        page = alice_client.get(f"/alerts/{alert.id}/").content.decode()
    assert "2 jobs failed for good with its latest error in the last 24h" in page

    Job.objects.filter(id=first.id).update(status=JobStatus.QUEUED, finished_at=None)  # retried
    page = alice_client.get(f"/alerts/{alert.id}/").content.decode()
    assert "1 job failed for good with its latest error in the last 24h" in page

    Job.objects.filter(id=latest.id).update(status=JobStatus.COMPLETED)  # retried, and it worked
    page = alice_client.get(f"/alerts/{alert.id}/").content.decode()
    assert failed_with_latest_error_link(page) is None
    assert 'id="none-failed-with-latest-error"' in page
    assert "No job is failed with its latest error now (in the last 24h)" in page


@time_machine.travel(NOW, tick=False)
def test_the_count_says_when_it_takes_in_jobs_of_other_alerts_with_the_same_error(alice_client, alice):
    from alerts.services import alert_resolve

    earlier = alert_for(failed_with(TIMEOUT, hours_ago=5), failed_with(TIMEOUT, hours_ago=4))
    alert_resolve(alert=earlier, user=alice, reason="a retry will do")
    latest = alert_for(failed_with(TIMEOUT, hours_ago=2))  # its list: the last 24h, the first alert's jobs too

    page = alice_client.get(f"/alerts/{latest.id}/").content.decode()

    assert "3 jobs failed for good with its latest error in the last 24h, some counted into other alerts" in page
