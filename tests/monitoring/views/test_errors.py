"""Error analysis: how often attempts fail, by class and exception, the same errors grouped, their alerts."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from alerts.models import AlertOccurrence
from alerts.services import alert_resolve
from jobs.models import Job, JobStatus
from monitoring.models import EventType, JobExecutionLog
from tests.factories import AlertHistoryFactory, JobExecutionLogFactory, JobFactory, UserFactory
from tests.monitoring.views.conftest import htmx

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
SCRIPT = "<script>alert('pwned')</script>"


def failure(job, hours_ago: float, *, kind: str, error_class: str, fingerprint: str, message="boom", retried=False):
    return JobExecutionLogFactory(
        job=job,
        event_type=EventType.ERROR,
        status=JobStatus.RETRYING if retried else JobStatus.FAILED,
        timestamp=NOW - timedelta(hours=hours_ago),
        error_details={"type": kind, "message": message, "error_class": error_class, "fingerprint": fingerprint},
    )


@pytest.fixture
def failures():
    """In the last day: three timeouts (two job types, one retried), one data error; and an old one."""
    ai_1, ai_2 = JobFactory(job_type="ai_matching"), JobFactory(job_type="ai_matching")
    sleep, bad = JobFactory(), JobFactory()
    timeout = {"kind": "httpx.ConnectTimeout", "error_class": "transient", "fingerprint": "timeout"}
    failure(ai_1, 20, retried=True, **timeout)
    failure(ai_2, 5, **timeout)
    failure(sleep, 1, message="timed out after 5s", **timeout)
    failure(bad, 2, kind="ValueError", error_class="data", fingerprint="value")
    failure(JobFactory(), 30, kind="KeyError", error_class="configuration", fingerprint="old")  # before the window
    return {"ai_2": ai_2, "sleep": sleep, "bad": bad}


@time_machine.travel(NOW, tick=False)
def test_groups_the_same_errors_with_count_first_and_last_seen_job_types_and_an_example(alice_client, failures):
    response = alice_client.get("/errors/")

    assert response.status_code == 200
    timeout, value = response.context["top_errors"]
    assert (timeout["fingerprint"], timeout["count"]) == ("timeout", 3)
    assert timeout["job_types"] == ["ai_matching", "demo.sleep"]
    page = response.content.decode()
    group = page.split('<table role="table" class="table top-errors stack-narrow">')[1].split("</tr>")[1]
    assert "httpx.ConnectTimeout" in group and "timed out after 5s" in group  # the latest occurrence's message
    assert "<strong>3</strong>" in group and "20h 00m ago" in group and "1h 00m ago" in group
    assert f'href="/jobs/{failures["sleep"].id}/"' in group  # an example: the latest failed job
    assert 'href="?job_type=ai_matching"' in group
    assert "most frequent first: all 2." in page


@time_machine.travel(NOW, tick=False)
def test_counts_by_class_and_by_exception_type_with_their_share(alice_client, failures):
    response = alice_client.get("/errors/")

    by_class = {row["error_class"]: (row["count"], row["share"]) for row in response.context["by_class"]}
    assert by_class == {"transient": (3, 0.75), "configuration": (0, 0.0), "data": (1, 0.25), "system": (0, 0.0)}
    assert [(row["exception_type"], row["count"]) for row in response.context["by_type"]] == [
        ("httpx.ConnectTimeout", 3),
        ("ValueError", 1),
    ]
    page = response.content.decode()
    assert '<span class="num-inline">75 %</span>' in page
    assert "retried automatically" in page  # what a class means for the operator
    cards = page.split('<div class="cards">')[1]
    assert '<span class="card-value">4</span>' in cards  # failed attempts
    assert '<span class="card-value">1</span>' in cards  # of which retried


@time_machine.travel(NOW, tick=False)
def test_draws_error_frequency_over_time_telling_final_failures_from_retried_ones(alice_client, failures):
    page = alice_client.get("/errors/").content.decode()
    assert '<figure class="chart" id="chart-errors">' in page
    assert "<title>Nov 28 07:00–07:15 UTC\nfailed for good: 0\nfailed, then retried: 1</title>" in page
    assert "<title>Nov 29 02:00–02:15 UTC\nfailed for good: 1\nfailed, then retried: 0</title>" in page


@time_machine.travel(NOW, tick=False)
def test_a_failed_attempt_whose_retry_a_cancel_stopped_is_not_failed_then_retried(alice_client, failures):
    # The attempt failed after a cancel was asked for: not retried, the cancel wins (jobs/manager.py).
    JobExecutionLogFactory(
        job=JobFactory(),
        event_type=EventType.ERROR,
        status=JobStatus.CANCELLED,
        timestamp=NOW - timedelta(hours=20),
        error_details={"type": "httpx.ReadTimeout", "message": "boom", "error_class": "transient", "fingerprint": "t"},
    )

    page = alice_client.get("/errors/").content.decode()

    cards = page.split('<div class="cards">')[1].split("</section>")[0]
    retried = cards.split("failed, then retried")[1].split("</div>")[0]
    assert '<span class="card-value">1</span>' in retried, "the cancelled attempt counted as getting another chance"
    assert '<span class="card-value">5</span>' in cards  # failed attempts, the cancelled one included
    stack = "failed for good: 0\nfailed, then retried: 1\nfailed, retry cancelled: 1</title>"
    assert f"<title>Nov 28 07:00–07:15 UTC\n{stack}" in page


@time_machine.travel(NOW, tick=False)
def test_shows_the_alerts_of_each_error_group_and_whether_they_are_resolved(alice_client, alice, failures):
    open_alert = AlertHistoryFactory(job=failures["ai_2"], severity="critical", title="ai_matching failed")
    resolved = AlertHistoryFactory(job=failures["bad"], title="demo.sleep failed")
    alert_resolve(alert=resolved, user=alice)

    response = alice_client.get("/errors/")

    timeout, value = response.context["top_errors"]
    assert [a.id for a in timeout["alerts"]] == [open_alert.id] and [a.id for a in value["alerts"]] == [resolved.id]
    rows = (
        response.content.decode().split('<table role="table" class="table top-errors stack-narrow">')[1].split("</tr>")
    )
    assert f'href="/alerts/{open_alert.id}/"' in rows[1] and "● open" in rows[1] and "badge-critical" in rows[1]
    assert f'href="/alerts/{resolved.id}/"' in rows[2] and "✓ resolved" in rows[2]


@time_machine.travel(NOW, tick=False)
def test_without_the_alerts_permission_the_alerts_column_is_left_out(client, failures):
    client.force_login(UserFactory(permissions=["monitoring.view_jobexecutionlog"]))
    response = client.get("/errors/")
    assert response.status_code == 200
    assert "alerts" not in response.context["top_errors"][0]
    page = response.content.decode()
    assert '<th role="columnheader" scope="col">Job types</th>' in page  # the headers, as written
    assert '<th role="columnheader" scope="col">Alerts</th>' not in page


@time_machine.travel(NOW, tick=False)
def test_exception_types_and_messages_are_escaped(alice_client):
    failure(JobFactory(), 1, kind=SCRIPT, error_class="data", fingerprint="x", message=SCRIPT)
    page = alice_client.get("/errors/").content.decode()
    assert "<script>alert" not in page
    assert page.count("&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;") >= 3  # group, type table, tooltip


def test_a_quiet_timeframe_says_so_and_where_to_look(alice_client):
    page = alice_client.get("/errors/?timeframe=6h").content.decode()
    assert "No attempt failed in the last 6h." in page
    assert '<a href="?timeframe=24h">24h</a>, <a href="?timeframe=7d">7d</a>, <a href="?timeframe=30d">30d</a>' in page
    assert "The same errors, grouped" not in page


@pytest.mark.parametrize(
    ("timeframe", "window", "differs"),
    [("15m", "1h", True), ("1h", "1h", False), ("6h", "24h", True), ("24h", "24h", False), ("30d", "7d", True)],
)
def test_the_failed_jobs_link_lists_the_same_period_or_says_which_one(alice_client, timeframe, window, differs):
    """The finished-jobs list has fewer windows: the shortest covering the timeframe, named when it differs."""
    page = alice_client.get(f"/errors/?timeframe={timeframe}&job_type=ai_matching").content.decode()
    card = page.split('id="still-failed"')[0].rsplit("<a ", 1)[1]
    assert f'href="/jobs/?view=finished&amp;status=failed&amp;window={window}&amp;job_type=ai_matching"' in card
    assert ("(the list shows the last" in page) is differs


def failed_for_good(hours_ago: float, *, fingerprint: str, job_type="demo.sleep", kind="httpx.ConnectTimeout"):
    """A job failed for good now, this error its last: the failed list shows it."""
    details = {"type": kind, "message": "boom", "error_class": "transient", "fingerprint": fingerprint}
    job = JobFactory(job_type=job_type, failed=True, finished_at=NOW - timedelta(hours=hours_ago), last_error=details)
    failure(job, hours_ago, kind=kind, error_class="transient", fingerprint=fingerprint)
    return job


def retried_by_hand_and_completed(job):
    Job.objects.filter(id=job.id).update(status=JobStatus.COMPLETED, finished_at=NOW - timedelta(minutes=5))


def jobs_cell(page: str, fingerprint: str) -> str:
    """The "Jobs" cell of that error group's row."""
    row = page.split(f'error={fingerprint}" title="This error')[1].split("</tr>")[0]
    return row.split('data-label="Jobs">')[1].split("</td>")[0]


@time_machine.travel(NOW, tick=False)
def test_each_group_says_how_many_jobs_it_left_failed_for_good_and_links_only_those(alice_client):
    """Re-check: every group linked "failed with it →", also an HTTP error whose jobs all succeeded
    on their automatic retry: the list it opened said "No finished jobs match these filters"."""
    for hours_ago in (1, 2, 3):
        failed_for_good(hours_ago, fingerprint=TIMEOUT)
    retried_by_hand_and_completed(failed_for_good(4, fingerprint=TIMEOUT))  # counted as it failed, not now
    for hours_ago in (1, 2):  # failed, then succeeded on their automatic retry
        failure(JobFactory(status=JobStatus.COMPLETED), hours_ago, retried=True, **HTTP_ERROR)

    page = alice_client.get("/errors/").content.decode()

    timeouts = jobs_cell(page, TIMEOUT)
    assert f'href="/jobs/?view=finished&amp;status=failed&amp;window=24h&amp;error={TIMEOUT}"' in timeouts
    assert ">3 failed for good →</a>" in timeouts
    http_errors = jobs_cell(page, HTTP)
    assert "/jobs/?view=finished" not in http_errors and "none failed for good" in http_errors
    followed = alice_client.get(f"/jobs/?view=finished&status=failed&window=24h&error={TIMEOUT}")
    assert len(followed.context["page"].object_list) == 3  # as many as it said


HTTP = "00000000000000ff"
HTTP_ERROR = {"kind": "httpx.HTTPStatusError", "error_class": "transient", "fingerprint": HTTP}


@time_machine.travel(NOW, tick=False)
def test_a_groups_jobs_failed_for_good_are_of_the_job_type_chosen_and_capped_at_what_one_click_retries(
    alice_client, monkeypatch
):
    failed_for_good(1, fingerprint=TIMEOUT, job_type="ai_matching")
    failed_for_good(2, fingerprint=TIMEOUT)
    failed_for_good(3, fingerprint=TIMEOUT)

    page = alice_client.get("/errors/?job_type=ai_matching").content.decode()
    assert ">1 failed for good →</a>" in jobs_cell(page, TIMEOUT)

    monkeypatch.setattr("monitoring.views.errors.MAX_BULK_RETRY", 2)
    assert ">2 or more failed for good →</a>" in jobs_cell(alice_client.get("/errors/").content.decode(), TIMEOUT)


@time_machine.travel(NOW, tick=False)
def test_the_failures_for_good_card_also_says_how_many_jobs_are_failed_still(alice_client):
    """Re-check: the card read "jobs failed for good 2" and its list showed 1: outcomes count each
    failure for good, and a job retried by hand since (here: it then completed) is listed no more.
    As on the overview, both figures are said."""
    failed_for_good(1, fingerprint=TIMEOUT)
    retried_by_hand_and_completed(failed_for_good(2, fingerprint=TIMEOUT))
    failed_for_good(3, fingerprint=VALUE, job_type="imports")

    response = alice_client.get("/errors/")

    assert response.context["metrics"]["overall"]["failed"] == 3 and response.context["still_failed"] == 2
    card = response.content.decode().split('<span class="card-label">Failed attempts</span>')[1].split("</a>")[0]
    assert '<span class="card-value">3</span>' in card
    assert 'failures for good · <strong id="still-failed">2 still failed</strong>: not retried by hand since' in card
    assert 'href="/jobs/?view=finished&amp;status=failed&amp;window=24h"' in card
    # Of the error, or the job type, chosen.
    assert alice_client.get(f"/errors/?error={VALUE}").context["still_failed"] == 1
    assert alice_client.get("/errors/?job_type=demo.sleep").context["still_failed"] == 1


def test_bad_filters_are_a_400_naming_the_field(alice_client):
    response = alice_client.get("/errors/?timeframe=1y")
    assert response.status_code == 400
    assert "(<code>timeframe</code>): Select a valid choice." in response.content.decode()


def test_a_hand_made_poll_with_bad_filters_gets_the_filter_errors(alice_client):
    response = alice_client.get("/errors/?timeframe=x", headers=htmx("errors-live"))
    assert response.status_code == 400
    page = response.content.decode()
    assert "(<code>timeframe</code>): Select a valid choice." in page
    assert "No attempt failed" not in page


def test_a_poll_gets_only_the_live_part_and_keeps_the_filters(alice_client):
    url = "/errors/?timeframe=7d&job_type=ai_matching"
    partial = alice_client.get(url, headers=htmx("errors-live")).content.decode()
    assert partial.lstrip().startswith('<div id="errors-live" hx-get="/errors/?timeframe=7d&amp;job_type=ai_matching"')
    assert "<html" not in partial


def test_needs_the_metrics_permission(client):
    client.force_login(UserFactory(permissions=["jobs.view_job", "alerts.view_alerthistory"]))
    response = client.get("/errors/")
    assert response.status_code == 403 and b"monitoring.view_jobexecutionlog" in response.content


def test_renders_in_a_bounded_number_of_queries(alice_client, outcome_history, django_assert_max_num_queries):
    failed_jobs = [job for i, job in enumerate(outcome_history) if i % 10 == 0]
    for n in range(5):  # alerts that hundreds of the failures were counted into
        alert = AlertHistoryFactory(job=failed_jobs[n])
        counted = failed_jobs[n * 60 : (n + 1) * 60]  # every error group has some of them
        AlertOccurrence.objects.bulk_create(AlertOccurrence(alert=alert, job=job) for job in counted)
    for job in failed_jobs:  # failed for good still, every group's jobs: counted for every group shown
        job.status, job.finished_at = JobStatus.FAILED, timezone.now()
        job.last_error = JobExecutionLog.objects.get(job=job).error_details
    Job.objects.bulk_update(failed_jobs, ["status", "finished_at", "last_error"])
    # session, user, permissions; performance_metrics without the execution times the page does
    # not show (two statements on Postgres, six queries on SQLite); the groups' alerts 2; the jobs
    # still failed, and each group's failed for good now (one query for the ten)
    budget = 9 if connection.vendor == "postgresql" else 14
    for timeframe in ("1h", "24h", "30d"):
        with django_assert_max_num_queries(budget):
            response = alice_client.get(f"/errors/?timeframe={timeframe}")
        assert response.status_code == 200
    assert "p50_ms" not in response.context["metrics"]["overall"] and "by_job_type" not in response.context["metrics"]
    assert response.context["metrics"]["overall"]["failed_attempts"] == 300
    assert len(response.context["top_errors"]) == 10
    groups = response.context["error_groups"]
    assert groups > 10 and f"the top 10 of <strong>{groups} groups</strong>" in response.content.decode()
    # The first 3 alerts of each group loaded (open ones first, newest first), the others counted.
    assert all(len(group["alerts"]) == 3 for group in response.context["top_errors"])
    assert all(group["more_alerts"] == 2 for group in response.context["top_errors"])
    assert response.content.decode().count('<span class="muted small">and 2 more</span>') == 10
    assert all(group["failed_jobs_now"] in (7, 8) for group in response.context["top_errors"])  # 300 in 40 groups
    assert response.context["still_failed"] == 300


@pytest.mark.parametrize(
    "timeframe, visible, hidden, said",
    [
        ("15m", 10, 30, "10 s"),
        ("1h", 15, 30, "15 s"),
        ("6h", 30, 30, "30 s"),
        ("24h", 60, 60, "1 min"),
        ("7d", 300, 300, "5 min"),
        ("30d", 300, 300, "5 min"),
    ],
)
def test_a_poll_comes_as_often_as_the_timeframes_figures_move(alice_client, timeframe, visible, hidden, said):
    """A month's error analysis (a second of database at 30 days of history) is not asked for
    every few seconds; the last hour's stays live."""
    partial = alice_client.get(f"/errors/?timeframe={timeframe}", headers=htmx("errors-live")).content.decode()

    trigger = re.search(r'<div id="errors-live"[^>]* hx-trigger="([^"]*)"', partial)[1]
    assert f"every {visible}s [document.visibilityState === 'visible']" in trigger
    assert f"every {hidden}s [document.visibilityState !== 'visible']" in trigger
    assert f"refreshes every {said}</p>" in partial


# --- one error group's own view: ?error=<fingerprint> -----------------------------------------

TIMEOUT = "0123456789abcdef"
VALUE = "fedcba9876543210"


@pytest.fixture
def two_groups():
    """In the last day: a timeout three times (two job types, one retried), a data error twice."""
    ai_1, ai_2, sleep = JobFactory(job_type="ai_matching"), JobFactory(job_type="ai_matching"), JobFactory()
    timeout = {"kind": "httpx.ConnectTimeout", "error_class": "transient", "fingerprint": TIMEOUT}
    failure(ai_1, 20, retried=True, **timeout)
    failure(ai_2, 5, **timeout)
    failure(sleep, 1, message="timed out after 5s", **timeout)
    bad_1, bad_2 = JobFactory(job_type="imports"), JobFactory(job_type="imports")
    failure(bad_1, 3, kind="ValueError", error_class="data", fingerprint=VALUE, message=SCRIPT)
    failure(bad_2, 2, kind="ValueError", error_class="data", fingerprint=VALUE, message=SCRIPT)
    return {"sleep": sleep, "bad_2": bad_2}


@time_machine.travel(NOW, tick=False)
def test_one_error_group_every_figure_about_it_only(alice_client, two_groups):
    response = alice_client.get(f"/errors/?error={TIMEOUT.upper()}")  # as the job list takes it, any case

    assert response.status_code == 200
    assert response.context["fingerprint"] == TIMEOUT
    (group,) = response.context["top_errors"]
    assert response.context["group"] == group
    assert (group["fingerprint"], group["count"], group["job_types"]) == (TIMEOUT, 3, ["ai_matching", "demo.sleep"])
    assert (group["first_seen"], group["last_seen"]) == (NOW - timedelta(hours=20), NOW - timedelta(hours=1))
    assert group["example_job_id"] == two_groups["sleep"].id
    assert response.context["error_groups"] == 1
    by_class = {row["error_class"]: row["count"] for row in response.context["by_class"]}
    assert by_class == {"transient": 3, "configuration": 0, "data": 0, "system": 0}
    assert [(row["exception_type"], row["count"]) for row in response.context["by_type"]] == [
        ("httpx.ConnectTimeout", 3)
    ]
    overall = response.context["metrics"]["overall"]
    assert (overall["failed_attempts"], overall["failed"], overall["retried_failures"]) == (3, 2, 1)
    page = response.content.decode()
    # The chart: the value errors' buckets (02:00 and 01:00 ago) count nothing.
    assert "<title>Nov 28 07:00–07:15 UTC\nfailed for good: 0\nfailed, then retried: 1</title>" in page
    assert "<title>Nov 29 00:00–00:15 UTC\nfailed for good: 0\nfailed, then retried: 0</title>" in page
    assert "<title>One error: httpx.ConnectTimeout · Job monitor</title>" in page
    assert '<h1 id="one-error">One error: <code class="error-type">httpx.ConnectTimeout</code>: ' in page
    assert "timed out after 5s</bdi></h1>" in page
    # The chip takes the error off, the timeframe and job type kept; its jobs are linked.
    assert f'<span class="filter-chip" id="error-chip">Error <code>{TIMEOUT}</code>' in page
    assert 'href="?" title="Every error"' in page
    jobs = f"/jobs/?view=finished&amp;status=failed&amp;window=24h&amp;error={TIMEOUT}"
    assert f'<a class="card card-alarm" href="{jobs}"' in page  # the failed-for-good card: its jobs only
    assert 'id="one-error-jobs"' not in page and 'id="none-failed-with-it"' in page  # none has it as last error
    assert "Success rate" not in page  # of every attempt, not this error's
    # The filters keep the error: the timeframe tabs, the job type form, the job types' links.
    assert f'href="/errors/?timeframe=7d&amp;error={TIMEOUT}"' in page
    assert f'<input type="hidden" name="error" value="{TIMEOUT}">' in page
    assert f'href="?error={TIMEOUT.upper()}&amp;job_type=ai_matching"' in page


@time_machine.travel(NOW, tick=False)
def test_one_error_group_links_its_jobs_failed_for_good_now_or_says_there_are_none(alice_client, two_groups):
    failed_for_good(2, fingerprint=TIMEOUT)
    retried_by_hand_and_completed(failed_for_good(3, fingerprint=TIMEOUT))
    failed_for_good(0.1, fingerprint=VALUE)  # another error's

    page = alice_client.get(f"/errors/?error={TIMEOUT}").content.decode()
    jobs = f"/jobs/?view=finished&amp;status=failed&amp;window=24h&amp;error={TIMEOUT}"
    assert f'<a id="one-error-jobs" href="{jobs}"' in page and ">1 job failed for good with it →</a>" in page
    assert '<strong id="still-failed">1 still failed</strong>' in page

    # Quiet in the last 15 minutes, it has a job failed for good in the last hour the list shows.
    failed_for_good(0.5, fingerprint=TIMEOUT)
    page = alice_client.get(f"/errors/?error={TIMEOUT}&timeframe=15m").content.decode()
    assert ">1 job failed for good with it →</a>" in page and "window=1h" in page

    page = alice_client.get(f"/errors/?error={TIMEOUT}&timeframe=15m&job_type=imports").content.decode()
    assert 'id="one-error-jobs"' not in page
    assert "no job failed for good with it now (in the last 1h)" in page


@time_machine.travel(NOW, tick=False)
def test_one_error_group_with_a_job_type_and_a_timeframe(alice_client, two_groups):
    response = alice_client.get(f"/errors/?error={TIMEOUT}&job_type=ai_matching&timeframe=6h")

    (group,) = response.context["top_errors"]
    assert (group["count"], group["job_types"]) == (1, ["ai_matching"])
    assert response.context["metrics"]["overall"]["failed_attempts"] == 1
    page = response.content.decode()
    assert 'href="?job_type=ai_matching&amp;timeframe=6h" title="Every error"' in page
    assert f'href="/errors/?timeframe=24h&amp;job_type=ai_matching&amp;error={TIMEOUT}"' in page


@time_machine.travel(NOW, tick=False)
def test_one_error_group_heading_is_escaped(alice_client, two_groups):
    page = alice_client.get(f"/errors/?error={VALUE}").content.decode()

    assert "<script>alert" not in page
    escaped = "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;"
    assert f'One error: <code class="error-type">ValueError</code>: <bdi>{escaped}</bdi></h1>' in page


@time_machine.travel(NOW, tick=False)
def test_one_error_group_quiet_in_the_timeframe_says_so_and_where_to_look(alice_client, two_groups):
    response = alice_client.get(f"/errors/?error={TIMEOUT}&timeframe=15m")

    assert response.status_code == 200 and response.context["group"] is None
    page = response.content.decode()
    assert f'<h1 id="one-error">One error: <code>{TIMEOUT}</code></h1>' in page
    assert "No attempt failed with this error in the last 15m." in page
    assert f'<a href="?error={TIMEOUT}&amp;timeframe=24h">24h</a>' in page


@time_machine.travel(NOW, tick=False)
def test_each_top_error_links_its_own_view(alice_client, two_groups):
    page = alice_client.get("/errors/?timeframe=24h&job_type=imports").content.decode()

    links = re.findall(r'<a class="error-group-link" href="([^"]*)"', page)
    assert links == [f"?timeframe=24h&amp;job_type=imports&amp;error={VALUE}"]


@pytest.mark.parametrize("error", ["0123", "0123456789abcdeg", "0123456789abcdef0", "x" * 300])
def test_a_malformed_error_is_a_400_naming_it(alice_client, error):
    response = alice_client.get("/errors/", {"error": error})

    assert response.status_code == 400
    assert "(<code>error</code>): " in response.content.decode()


def test_an_error_given_twice_is_a_400_naming_it(alice_client):
    response = alice_client.get(f"/errors/?error={TIMEOUT}&error={VALUE}")

    assert response.status_code == 400
    assert "(<code>error</code>): given 2 times; give it once" in response.content.decode()


def test_one_error_group_needs_the_metrics_permission(client):
    client.force_login(UserFactory(permissions=["jobs.view_job", "alerts.view_alerthistory"]))
    response = client.get(f"/errors/?error={TIMEOUT}")
    assert response.status_code == 403 and b"monitoring.view_jobexecutionlog" in response.content


@time_machine.travel(NOW, tick=False)
def test_one_error_group_shows_its_alerts(alice_client, two_groups):
    alert = AlertHistoryFactory(job=two_groups["sleep"], severity="critical", title="demo.sleep failed")
    AlertHistoryFactory(job=two_groups["bad_2"], title="imports failed")  # the other group's

    response = alice_client.get(f"/errors/?error={TIMEOUT}")

    assert [a.id for a in response.context["group"]["alerts"]] == [alert.id]
    assert f'href="/alerts/{alert.id}/"' in response.content.decode()


def test_one_error_group_renders_in_as_many_queries(alice_client, outcome_history, django_assert_max_num_queries):
    now = timezone.now()  # outcome_history's clock
    for i, job in enumerate(outcome_history[1:60:2]):
        details = {"type": "httpx.ConnectTimeout", "message": f"timed out {i}", "fingerprint": TIMEOUT}
        JobExecutionLogFactory(
            job=job, event_type="error", status="failed", timestamp=now - timedelta(minutes=i), error_details=details
        )
    budget = 9 if connection.vendor == "postgresql" else 14  # as the whole page's
    for timeframe in ("1h", "24h", "30d"):
        with django_assert_max_num_queries(budget):
            response = alice_client.get(f"/errors/?timeframe={timeframe}&error={TIMEOUT}")
        assert response.status_code == 200
    (group,) = response.context["top_errors"]
    assert (group["fingerprint"], group["count"], response.context["error_groups"]) == (TIMEOUT, 30, 1)
    assert response.context["metrics"]["overall"]["failed_attempts"] == 30
