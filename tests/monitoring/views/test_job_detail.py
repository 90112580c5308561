"""A job in full: what it was asked to do, what happened when, why it failed, what was retried."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
import time_machine
from django.utils import timezone
from django.utils.html import escape

from alerts.manager import alert_manager
from jobs.manager import job_manager
from jobs.models import JobStatus
from monitoring.models import EventType, SystemHealthMetric
from tests.factories import (
    AlertHistoryFactory,
    JobExecutionLogFactory,
    JobFactory,
    JobRetryHistoryFactory,
    health_result,
)
from tests.monitoring.views.conftest import htmx

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
SCRIPT = "<script>alert('pwned')</script>"


def at(seconds):
    return NOW + timedelta(seconds=seconds)


@pytest.fixture
def failed_job():
    """A job that failed twice with a transient error and was retried, then failed for good."""
    job = JobFactory(
        job_type="ai_matching",
        failed=True,
        parameters={"candidate_ids": [1, 2], "job_posting_id": 7},
        started_at=at(1),
        finished_at=at(10),
        attempts=2,
        max_attempts=2,
        last_error={
            "type": "httpx.ConnectTimeout",
            "message": "timed out",
            "error_class": "transient",
            "retryable": False,
            "hint": "Not retried: all 2 attempts used.",
            "fingerprint": "0123456789abcdef",
        },
    )
    events = [
        (0, EventType.QUEUED, "queued", None, "submitted by alice", {"attempt": 1}),
        (1, EventType.STARTED, "running", 0, "attempt 1 started on w1:1", {"attempt": 1}),
        (2, EventType.PROGRESS, "running", 50, "scored 1/2", {"attempt": 1}),
        (3, EventType.ERROR, "retrying", None, "httpx.ConnectTimeout: timed out", {"attempt": 1}),
        (5, EventType.RETRY, "queued", None, "attempt 2 queued after 2.0s (planned 1.9s)", {"attempt": 2}),
        (6, EventType.STARTED, "running", 0, "attempt 2 started on w1:1", {"attempt": 2}),
        (10, EventType.ERROR, "failed", None, "httpx.ConnectTimeout: timed out", {"attempt": 2}),
    ]
    for seconds, event_type, status, progress, message, details in events:
        JobExecutionLogFactory(
            job=job,
            event_type=event_type,
            status=status,
            progress=progress,
            message=message,
            details=details,
            timestamp=at(seconds),
            # what each attempt's worker measured: from its start (1 s, 6 s) to its error
            execution_time_ms={3: 2000, 10: 4000}.get(seconds),
            error_details={"type": "httpx.ConnectTimeout", "traceback": "Traceback (most recent call last):\n  boom"}
            if event_type == EventType.ERROR
            else None,
        )
    JobRetryHistoryFactory(job=job, attempt_number=1, status="failed", started_at=at(1), completed_at=at(3))
    JobRetryHistoryFactory(
        job=job, attempt_number=2, status="failed", started_at=at(6), completed_at=at(10), retry_delay_seconds=2
    )
    return job


@time_machine.travel(at(60), tick=False)
def test_shows_parameters_timeline_error_attempts_and_alerts(alice_client, failed_job):
    AlertHistoryFactory(job=failed_job, title="ai_matching failed", severity="error", triggered_at=at(11))

    response = alice_client.get(f"/jobs/{failed_job.id}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "&quot;job_posting_id&quot;: 7" in page  # parameters, pretty-printed
    # Timeline: every event in order, with the time since the previous one.
    kinds = [row.event_type for row in response.context["timeline"]]
    assert kinds == ["queued", "started", "progress", "error", "retry", "started", "error"]
    assert "+2.0 s" in page and "+4.0 s" in page
    # The error: its class, type, message, what to do, and the traceback folded away.
    assert "Why it failed" in page
    assert '<span class="badge badge-transient">' in page and "httpx.ConnectTimeout" in page
    assert "Not retried: all 2 attempts used." in page
    assert '<details id="traceback" class="traceback">' in page and "Traceback (most recent call last):" in page
    # Attempts: how long each ran, the planned and the actual wait before the retry.
    attempts = response.context["attempts"]
    assert [(a.duration, a.planned_delay, a.waited) for a in attempts] == [(2.0, None, None), (4.0, 2, 3.0)]
    # whole seconds, as stored: not "2.0 s" beside the timeline's 1.9
    assert '<td role="cell" class="num" data-label="Planned wait">2 s</td>' in page
    # Until the attempt started, queue included: not "actual wait" beside the timeline's "queued after",
    # which an operator read as two different waits of the same retry.
    assert '<td role="cell" class="num" data-label="Waited to start">3.0 s</td>' in page
    assert '<span aria-hidden="true">+</span><span class="visually-hidden">Since the previous event</span>' in page
    assert "ai_matching failed" in page
    assert "Retry job" in page and "Cancel job" not in page  # alice may act; a failed job can be retried


def test_an_alert_that_occurred_again_says_its_message_is_the_first_occurrences(alice_client):
    """The alert keeps the message it was raised with; retried and failed again, the job's page
    must not pass "failed after 2 of 2 attempts" off as what just happened."""
    job = JobFactory(job_type="demo.fail", failed=True)
    failure = {"title": "demo.fail failed", "job_id": job.id, "job_type": "demo.fail"}
    first = alert_manager.process_alert_sync("job_failure", "error", failure | {"message": "failed after 2 of 2"})
    page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    assert "failed after 2 of 2" in page and "First occurrence:" not in page

    alert_manager.process_alert_sync("job_failure", "error", failure | {"message": "failed after 5 of 5"})

    page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    assert '<span class="muted">First occurrence:</span> failed after 2 of 2' in page
    alert_page = alice_client.get(f"/alerts/{first.id}/").content.decode()
    assert 'Message <span class="muted small">(its first occurrence)</span>' in alert_page


def test_user_text_is_escaped_everywhere(alice_client):
    job = JobFactory(
        failed=True,
        parameters={"name": SCRIPT},
        message=SCRIPT,
        last_error={"type": SCRIPT, "message": SCRIPT, "error_class": "data", "hint": SCRIPT},
    )
    JobExecutionLogFactory(
        job=job, event_type="error", message=SCRIPT, error_details={"type": "x", "traceback": SCRIPT}
    )
    JobRetryHistoryFactory(job=job, status="failed", error_message=SCRIPT)
    AlertHistoryFactory(job=job, title=SCRIPT, message=SCRIPT)

    page = alice_client.get(f"/jobs/{job.id}/").content.decode()

    assert "<script>alert" not in page
    assert page.count("&lt;script&gt;alert(") >= 8


def test_a_running_job_polls_its_live_part_and_a_finished_one_stops(alice_client):
    running = JobFactory(running=True, progress=30)
    live = alice_client.get(f"/jobs/{running.id}/", headers=htmx("job-live")).content.decode()
    assert "<html" not in live
    assert live.lstrip().startswith(f'<div id="job-live" class="status-running" hx-get="/jobs/{running.id}/"')
    assert "every 2s" in live and '<progress max="100" value="30"' in live

    done = JobFactory(completed=True)
    live = alice_client.get(f"/jobs/{done.id}/", headers=htmx("job-live")).content.decode()
    assert "hx-trigger" not in live


def attempt_fact(page: str) -> str:
    return re.search(r"<dt>Attempt</dt><dd[^>]*>(.*?)</dd>", page).group(1)


@pytest.mark.parametrize(
    "state, label",
    [
        ({"status": JobStatus.QUEUED, "attempts": 0, "max_attempts": 3}, "1 of 3 (queued)"),
        ({"running": True, "attempts": 2, "max_attempts": 4}, "2 of 4 (running)"),
        ({"status": JobStatus.RETRYING, "attempts": 1, "max_attempts": 4, "retry_delay": 30}, "1 of 4 failed, 2 next"),
        ({"completed": True, "attempts": 2, "max_attempts": 4}, "2 of 4 used"),
        ({"failed": True, "attempts": 3, "max_attempts": 3}, "3 of 3 used"),
        ({"status": JobStatus.CANCELLED, "attempts": 0, "max_attempts": 3}, "none of 3 started"),
    ],
)
def test_the_attempt_fact_names_the_attempt_running_or_coming_next(alice_client, state, label):
    job = JobFactory(**state)
    if job.status == JobStatus.RETRYING:
        job.next_attempt_at = timezone.now() + timedelta(seconds=30)
        job.save(update_fields=["next_attempt_at"])

    live = alice_client.get(f"/jobs/{job.id}/", headers=htmx("job-live")).content.decode()

    assert attempt_fact(live) == label


def test_a_job_retried_by_hand_reads_the_attempt_that_runs_next(alice_client):
    """A drill read "Attempt 1 of 4" on a retried job whose attempt 2 was the one queued."""
    job = JobFactory(failed=True, attempts=1, max_attempts=3)

    retried = alice_client.post(f"/jobs/{job.id}/retry/", {"attempt": 2}, headers=htmx("job-live")).content.decode()

    assert attempt_fact(retried) == "2 of 4 (queued)"  # a fresh budget of 3 after the one used


def test_a_viewer_sees_no_buttons(viewer_client):
    job = JobFactory(running=True)
    page = viewer_client.get(f"/jobs/{job.id}/").content.decode()
    assert "Cancel job" not in page and "Retry job" not in page


def test_an_unknown_job_is_a_404_page(alice_client):
    response = alice_client.get("/jobs/00000000-0000-4000-8000-000000000000/")
    assert response.status_code == 404
    assert b"There is no job with id" in response.content


def test_a_long_timeline_is_bounded_in_queries_and_rows(alice_client, big_history, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):  # session, user, permissions, job, events, count, attempts, alerts
        response = alice_client.get(f"/jobs/{big_history.id}/")
    detail = response.context["detail"]
    assert (len(detail.events), detail.events_total) == (500, 3000)
    assert (
        f'Showing the last 500 of 3000 events: <a href="/jobs/{big_history.id}/events/">all of them, oldest first</a>'
        in response.content.decode()
    )
    # Consecutive progress reports read as one row per attempt.
    assert [(row.attempt, row.count) for row in response.context["timeline"]] == [(9, 200), (10, 300)]
    with django_assert_max_num_queries(9):
        alice_client.get(f"/jobs/{big_history.id}/", headers=htmx("job-live"))


def test_a_long_timeline_reads_whole_page_by_page_from_its_first_event(
    alice_client, big_history, django_assert_max_num_queries
):
    """The job's page shows its latest 500 events, progress reports grouped; all of them, each
    in its own row, are a link away."""
    # session, user, permissions, the job, its events, their count, its attempts (the first page:
    # were the events before a retry pruned?)
    with django_assert_max_num_queries(7):
        first = alice_client.get(f"/jobs/{big_history.id}/events/")
    last = alice_client.get(f"/jobs/{big_history.id}/events/", {"page": 6})
    past_end = alice_client.get(f"/jobs/{big_history.id}/events/", {"page": 7})

    assert "Events 1–500 of 3000; it is still running: new ones come last." in first.content.decode()
    assert [row.message for row in first.context["timeline"]] == [f"report {n}" for n in range(500)]  # each one
    assert '<a href="?page=2" rel="next">Later ›</a>' in first.content.decode()
    assert "Events 2501–3000 of 3000" in last.content.decode()
    assert '<a href="?page=5" rel="prev">‹ Earlier</a>' in last.content.decode()
    assert last.context["timeline"][-1].message == "report 2999"
    assert "No events on page 7: the timeline has 6 pages." in past_end.content.decode()


def test_the_events_page_refuses_a_bad_page_naming_it_and_needs_the_job_to_exist(alice_client, viewer_client):
    job = JobFactory()

    refused = alice_client.get(f"/jobs/{job.id}/events/", {"page": "x"})
    missing = alice_client.get("/jobs/00000000-0000-4000-8000-000000000000/events/")

    assert refused.status_code == 400
    assert "(<code>page</code>): Enter a whole number." in refused.content.decode()
    assert missing.status_code == 404 and b"There is no job with id" in missing.content


def test_the_events_page_needs_login(client):
    job = JobFactory()

    response = client.get(f"/jobs/{job.id}/events/")

    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


@time_machine.travel(NOW, tick=False)
def test_a_job_still_queued_explains_what_it_waits_for_and_since_when(alice_client):
    job = JobFactory(status=JobStatus.QUEUED, created_at=at(-3600), queued_at=at(-250))
    page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    assert "No attempt has started yet." in page
    assert '<dt>Waiting for a worker</dt><dd><time datetime="2026-11-29T02:55:50+00:00"' in page
    assert ">4m 10s</time>" in page


def workers_seen(minutes_ago: float):
    """A healthy cluster.workers check: what the health page and cluster_watchdog take for a live worker."""
    health_result("cluster.workers", "healthy", now=NOW, minutes_ago=minutes_ago, value=2, metric_type="job_queue")


@time_machine.travel(NOW, tick=False)
def test_a_queued_job_says_how_many_jobs_wait_before_it_while_workers_run(alice_client):
    """Health said 2 workers and 43 jobs queued; the job said "Is a cluster running?"."""
    workers_seen(minutes_ago=1)
    job = JobFactory(status=JobStatus.QUEUED, queued_at=at(-60))
    for seconds in (-300, -200, -61):
        JobFactory(status=JobStatus.QUEUED, queued_at=at(seconds))
    JobFactory(status=JobStatus.QUEUED, queued_at=at(-10))  # after it
    # Taken by a worker already (whose last heartbeat is older than the last health check's).
    JobFactory(running=True, queued_at=at(-400), started_at=at(-90), heartbeat_at=at(-90))

    page = alice_client.get(f"/jobs/{job.id}/").content.decode()

    assert "3 jobs queued before it are still waiting (workers take the oldest first)" in page
    assert "a worker was seen 1m 00s ago" in page
    assert "Is a cluster running" not in page


@time_machine.travel(NOW, tick=False)
def test_jobs_held_by_a_paused_job_type_are_not_counted_as_waiting_before_it(alice_client):
    """They start only once their type is resumed: workers take this job before them."""
    workers_seen(minutes_ago=1)
    job = JobFactory(job_type="ai_matching", status=JobStatus.QUEUED, queued_at=at(-60))
    JobFactory(job_type="ai_matching", status=JobStatus.QUEUED, queued_at=at(-300))
    for seconds in (-400, -200):
        JobFactory(job_type="imports.candidates", status=JobStatus.QUEUED, queued_at=at(seconds))
    job_manager.pause_job_type_sync("imports.candidates", by="bob")

    page = alice_client.get(f"/jobs/{job.id}/", headers=htmx("job-live")).content.decode()
    assert "1 job queued before it is still waiting" in page

    job_manager.pause_job_type_sync("ai_matching", by="bob")
    page = alice_client.get(f"/jobs/{job.id}/", headers=htmx("job-live")).content.decode()
    assert "Held: ai_matching is paused</strong> by <bdi>bob</bdi>" in page
    assert "queued before it" not in page
    assert "<dt>Queued for</dt>" in page and "Waiting for a worker" not in page


@time_machine.travel(NOW, tick=False)
def test_the_first_job_in_the_queue_is_next_in_line(alice_client):
    workers_seen(minutes_ago=2)
    job = JobFactory(status=JobStatus.QUEUED, queued_at=at(-5))
    page = alice_client.get(f"/jobs/{job.id}/", headers=htmx("job-live")).content.decode()
    assert "It is next in line; a worker was seen 2m 00s ago." in page


@time_machine.travel(NOW, tick=False)
def test_a_job_waiting_while_every_worker_is_idle_says_its_task_is_likely_lost_and_when_it_is_queued_again(
    alice_client, settings
):
    """Drill: after a node was killed, five jobs whose tasks it had taken waited 10 minutes; their
    page said "2 jobs queued before it are still waiting" while no job ran anywhere."""
    settings.JOBS = {**settings.JOBS, "REQUEUE_AFTER": 600}
    workers_seen(minutes_ago=1)
    stranded = JobFactory(status=JobStatus.QUEUED, queued_at=at(-250), updated_at=at(-250))
    JobFactory(status=JobStatus.QUEUED, queued_at=at(-300), updated_at=at(-300))
    just_queued = JobFactory(status=JobStatus.QUEUED, queued_at=at(-5), updated_at=at(-5))

    page = alice_client.get(f"/jobs/{stranded.id}/", headers=htmx("job-live")).content.decode()
    fresh = alice_client.get(f"/jobs/{just_queued.id}/", headers=htmx("job-live")).content.decode()
    JobFactory(running=True)
    busy = alice_client.get(f"/jobs/{stranded.id}/", headers=htmx("job-live")).content.decode()

    assert (
        "<strong>Yet no job is running anywhere:</strong> its task was most likely taken by a node that stopped "
        'before starting it. The lost-job sweep queues it again at <time datetime="2026-11-29T03:05:50+00:00">'
        "03:05:50</time> (in 5m 50s; <code>JOBS_REQUEUE_AFTER</code> after it was last queued)." in page
    )
    assert "no job is running anywhere" not in fresh  # a minute: workers take tasks within seconds
    assert "no job is running anywhere" not in busy and "1 job queued before it is still waiting" in busy


@time_machine.travel(NOW, tick=False)
def test_a_queued_job_asks_whether_a_cluster_runs_only_when_no_worker_was_seen(alice_client, settings):
    settings.HEALTH = {**settings.HEALTH, "STALE_AFTER_MINUTES": 15}
    workers_seen(minutes_ago=40)  # as health and cluster_watchdog judge it: no worker alive
    job = JobFactory(status=JobStatus.QUEUED, queued_at=at(-600))
    JobFactory(status=JobStatus.QUEUED, queued_at=at(-700))

    page = alice_client.get(f"/jobs/{job.id}/").content.decode()

    assert "1 job queued before it is still waiting" in page
    assert "No worker has been seen for 40m 00s. Is a cluster running (<code>python manage.py qcluster</code>)?" in page
    never = JobFactory(status=JobStatus.QUEUED, queued_at=at(-1))
    SystemHealthMetric.objects.all().delete()
    never_seen = alice_client.get(f"/jobs/{never.id}/").content.decode()
    assert "No worker has ever been seen. Is a cluster running" in never_seen


def test_a_queued_job_page_and_its_poll_take_a_bounded_number_of_queries(
    alice_client, big_history, django_assert_max_num_queries
):
    queued = JobFactory(status=JobStatus.QUEUED, queued_at=timezone.now())  # behind the history's queued jobs
    # session, user, permissions, job, events, attempts, alerts; jobs before it, worker_liveness' 2,
    # whether its job type is paused
    with django_assert_max_num_queries(11):
        alice_client.get(f"/jobs/{queued.id}/")
    with django_assert_max_num_queries(11):
        alice_client.get(f"/jobs/{queued.id}/", headers=htmx("job-live"))


@time_machine.travel(NOW, tick=False)
def test_a_running_job_shows_its_timeout_and_the_time_left(alice_client):
    job = JobFactory(job_type="ai_matching", running=True, progress=40, started_at=at(-90), updated_at=at(-2))
    page = alice_client.get(f"/jobs/{job.id}/", headers=htmx("job-live")).content.decode()
    assert "<dt>Timeout</dt><dd>10m 00s · 8m 30s left</dd>" in page
    assert "⚠" not in page


def test_an_attempt_taken_back_from_a_lost_worker_ran_as_long_in_the_attempts_table_as_in_the_timeline(
    alice_client, settings
):
    """The drill: the timeline said the lost attempt ran 15 s (to its last heartbeat), the attempts
    table 46 s (to the sweep, 31 s later)."""
    settings.JOBS = {**settings.JOBS, "STALE_AFTER": 30.0}
    job = JobFactory(job_type="ai_matching", running=True, started_at=at(-46), heartbeat_at=at(-31))
    JobRetryHistoryFactory(job=job, attempt_number=1, started_at=at(-46), status="running")
    with time_machine.travel(NOW, tick=False):
        assert job_manager.recover_stale_jobs(now=NOW) == 1
        page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    timeline = page.split("<h2>Timeline</h2>")[1].split("</table>")[0]
    attempts = page.split("<h2>Attempts</h2>")[1].split("</table>")[0]
    lost_event = timeline.split('class="event-error"')[1].split("</tr>")[0]
    lost_attempt = attempts.split('<td role="cell" class="num" data-label="Attempt">1</td>')[1].split("</tr>")[0]
    assert '<td role="cell" class="num" data-label="Ran for">15 s</td>' in lost_event
    assert '<td role="cell" class="num" data-label="Ran for">15 s</td>' in lost_attempt


@time_machine.travel(NOW, tick=False)
def test_a_running_job_stuck_near_its_timeout_warns_in_words(alice_client):
    """At 0 % for 8 minutes, 2 minutes before JobTimeoutError: it looked like any healthy job."""
    job = JobFactory(job_type="ai_matching", running=True, progress=0, started_at=at(-480), updated_at=at(-480))
    page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    assert "<dt>Timeout</dt><dd>10m 00s · 2m 00s left</dd>" in page
    warning = page.split('class="notice notice-warning attempt-warning"')[1].split("</p>")[0]
    assert "⚠ No progress report for 8m 00s." in warning
    assert "⚠ 80 % of its 10m 00s timeout used: unless it finishes, it fails with JobTimeoutError in 2m 00s." in warning


@time_machine.travel(NOW, tick=False)
def test_a_running_job_whose_worker_stopped_beating_says_what_happens_next(alice_client, settings):
    settings.JOBS = {**settings.JOBS, "HEARTBEAT_INTERVAL": 5.0, "STALE_AFTER": 30.0}
    job = JobFactory(job_type="ai_matching", running=True, started_at=at(-60), updated_at=at(-20), heartbeat_at=at(-20))
    page = alice_client.get(f"/jobs/{job.id}/", headers=htmx("job-live")).content.decode()
    warning = page.split('class="notice notice-warning attempt-warning"')[1].split("</p>")[0]
    assert "⚠ No heartbeat from its worker for 20 s: the worker may have died or lost the database" in warning
    assert "taken back and retried once the last heartbeat is 30 s old." in warning
    assert "No progress report" not in warning


@time_machine.travel(NOW, tick=False)
def test_a_late_heartbeat_says_the_sweep_cancels_or_fails_the_job_when_it_will_not_be_retried(alice_client, settings):
    """The sweep retries an abandoned attempt only if another is left and no cancel was asked
    (EnhancedJobManager.recover_stale_jobs): "retried" told the operator of the others otherwise."""
    settings.JOBS = {**settings.JOBS, "HEARTBEAT_INTERVAL": 5.0, "STALE_AFTER": 30.0}

    def warning(**fields):
        job = JobFactory(
            job_type="ai_matching", running=True, started_at=at(-60), updated_at=at(-20), heartbeat_at=at(-20), **fields
        )
        page = alice_client.get(f"/jobs/{job.id}/", headers=htmx("job-live")).content.decode()
        return page.split('class="notice notice-warning attempt-warning"')[1].split("</p>")[0]

    cancelled = warning(cancel_requested_at=at(-25))
    assert "retried" not in cancelled
    assert "taken back and the job cancelled once the last heartbeat is 30 s old." in cancelled
    last = warning(attempts=3, max_attempts=3)
    assert "retried" not in last
    assert "taken back and the job fails (it was its last attempt) once the last heartbeat is 30 s old." in last
    assert "taken back and retried once" in warning(attempts=2, max_attempts=3)


def test_a_job_retried_by_an_operator_shows_the_last_error_without_its_stale_advice(alice_client):
    job = JobFactory(
        status=JobStatus.QUEUED,
        attempts=1,
        worker="node-1:4242",
        last_error={
            "type": "ValueError",
            "message": "bad row 7",
            "error_class": "data",
            "hint": "Fix it and resubmit.",
        },
    )
    page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    assert "Last error" in page and "bad row 7" in page
    assert "Fix it and resubmit." not in page  # an operator already acted on it
    assert "<dt>Last worker</dt>" in page  # nobody runs it now

    job.status = JobStatus.RUNNING
    job.save()
    assert "<dt>Worker</dt>" in alice_client.get(f"/jobs/{job.id}/").content.decode()


@time_machine.travel(NOW, tick=False)
def test_started_says_how_long_ago_with_the_full_date_in_its_tooltip(alice_client):
    """Drill: a job started 2 days ago said "Started 04:12:24 UTC", no date, beside "Submitted 2d 3h ago"."""
    job = JobFactory(completed=True, created_at=at(-(2 * 86400 + 3 * 3600)), started_at=at(-(2 * 86400 + 600)))
    page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    when = 'datetime="2026-11-27T02:50:00+00:00" title="2026-11-27 02:50:00 UTC"'
    started = f"<dt>Started</dt><dd><time {when}>2d 0h ago</time>"
    assert started in page
    queued = JobFactory(status=JobStatus.QUEUED)
    not_yet = alice_client.get(f"/jobs/{queued.id}/").content.decode()
    assert '<dt>Started</dt><dd><span class="muted">not yet</span>' in not_yet


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_failed_or_cancelled_job_polls_slowly_and_shows_a_retry_made_elsewhere(alice_client, status):
    """Drill: a failed job's page, retried through the API, kept showing "✕ failed" and Retry:
    it stopped polling once the job finished, but failed and cancelled jobs can still be retried."""
    job = JobFactory(status=status, finished_at=timezone.now(), attempts=1)

    page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    assert f'<div id="job-live" class="status-{status}" data-stopped hx-get="/jobs/{job.id}/"' in page
    assert "every 15s [document.visibilityState === 'visible'], every 60s" in page  # the slowest poll
    assert "every 2s" not in page

    job_manager.retry_job_sync(job.id, by="the API")  # as the API and the admin do
    poll = alice_client.get(f"/jobs/{job.id}/", headers=htmx("job-live")).content.decode()
    assert "queued" in poll.split("</h1>")[0] and "Retry job" not in poll
    assert "every 2s" in poll  # active again: the usual poll


def test_a_completed_job_does_not_poll(alice_client):
    job = JobFactory(completed=True)
    page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    assert "hx-trigger" not in page.split('<div id="job-live"')[1].split(">")[0]


@time_machine.travel(NOW, tick=False)
def test_an_overdue_retry_says_how_late_it_is_and_whether_a_worker_was_seen(alice_client, settings):
    """Drill: the cluster paused (SIGSTOP) while the job waited to retry; 2.5 minutes later the page
    said "Next attempt in 0.0 s (planned wait 2.4 s)" and went on saying it."""
    settings.HEALTH = {**settings.HEALTH, "STALE_AFTER_MINUTES": 15}
    workers_seen(minutes_ago=3)
    job = JobFactory(status=JobStatus.RETRYING, attempts=1, retry_delay=2.4, next_attempt_at=at(-150), finished_at=None)

    page = alice_client.get(f"/jobs/{job.id}/").content.decode()

    assert '<dt>Next attempt</dt><dd>overdue by 2m 30s <span class="muted">(planned wait 2.4 s)</span>' in page
    assert "in 0.0 s" not in page
    assert "a running cluster queues a retry within about a second of its due time" in page
    assert "A worker was seen 3m 00s ago: is its cluster stuck?" in page

    workers_seen(minutes_ago=40)
    SystemHealthMetric.objects.filter(timestamp__gt=at(-40 * 60)).delete()
    late = alice_client.get(f"/jobs/{job.id}/", headers=htmx("job-live")).content.decode()
    assert "No worker has been seen for 40m 00s. Is a cluster running (<code>python manage.py qcluster</code>)?" in late


@time_machine.travel(NOW, tick=False)
def test_a_retry_on_time_asks_nothing_and_reads_no_worker_liveness(alice_client, django_assert_max_num_queries):
    job = JobFactory(status=JobStatus.RETRYING, attempts=1, retry_delay=30, next_attempt_at=at(12))
    with django_assert_max_num_queries(7):  # session, user, permissions, job, events, attempts, alerts
        page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    assert "<dt>Next attempt</dt><dd>in 12 s" in page
    assert "overdue" not in page and "qcluster" not in page


def test_a_long_message_is_cut_short_at_the_top_of_the_page_and_read_in_full_in_the_timeline(alice_client):
    """Drill: a 2,000-character message under the job's title filled more than a phone's screen,
    pushing its status, progress and actions down."""
    message = "ValueError: " + "candidate <b>7</b> has no email; " * 60
    job = JobFactory(failed=True, message=message[:2000])
    JobExecutionLogFactory(job=job, event_type=EventType.ERROR, message=message[:2000])

    page = alice_client.get(f"/jobs/{job.id}/").content.decode()

    head = page.split('<p class="job-message"')[1].split("</p>")[0]
    shown = head.split(">", 1)[1]
    assert shown.startswith("<bdi>ValueError: candidate &lt;b&gt;7&lt;/b&gt;")
    assert "(in full in the timeline below)" in shown
    assert unescape(shown.split(" <span")[0]) == f"<bdi>{message[:299]}…</bdi>"
    timeline = page.split('class="message" data-label="Message">')[1].split("</td>")[0]
    assert timeline == escape(message[:2000])


def test_a_job_whose_events_retention_pruned_says_so(alice_client, settings):
    """Drill: after a prune, a finished job's page said "No events recorded for this job"."""
    settings.RETENTION_DAYS = {"job_execution_logs": 45, "system_health_metrics": 30}
    pruned = JobFactory(completed=True, finished_at=timezone.now() - timedelta(days=60))
    recent = JobFactory(completed=True, finished_at=timezone.now() - timedelta(days=1))

    pruned_page = alice_client.get(f"/jobs/{pruned.id}/").content.decode()
    recent_page = alice_client.get(f"/jobs/{recent.id}/").content.decode()

    assert "Its events were pruned: they are kept 45 days after a job finishes" in pruned_page
    assert "No events recorded for this job." in recent_page and "pruned" not in recent_page


def test_a_job_retried_after_its_events_were_pruned_says_its_timeline_starts_at_the_retry(
    alice_client, retried_after_prune
):
    """Drill: a failed job retried 67 days on showed a timeline starting at "retry", nothing saying
    that its first attempt's events had been pruned. Its page and its "all events" page say so."""
    pruned, recent = retried_after_prune

    pruned_page = alice_client.get(f"/jobs/{pruned.id}/").content.decode()
    recent_page = alice_client.get(f"/jobs/{recent.id}/").content.decode()

    assert "The events of the attempts before its retry were pruned: they are kept 45 days" in pruned_page
    assert "pruned" not in recent_page
    pruned_events = alice_client.get(f"/jobs/{pruned.id}/events/").content.decode()
    recent_events = alice_client.get(f"/jobs/{recent.id}/events/").content.decode()
    assert "The events of the attempts before its retry were pruned: they are kept 45 days" in pruned_events
    assert f'<a href="/jobs/{pruned.id}/">Its page</a> lists all its attempts.' in pruned_events
    assert "pruned" not in recent_events


def test_a_completed_jobs_earlier_error_reads_as_history_not_as_a_failure(alice_client):
    job = JobFactory(
        status=JobStatus.COMPLETED,
        attempts=2,
        last_error={"type": "ValueError", "message": "bad row 7", "error_class": "data"},
    )

    page = alice_client.get(f"/jobs/{job.id}/").content.decode()

    assert "An earlier attempt's error" in page and "(it completed since)" in page and "bad row 7" in page
    assert "panel-error" not in page
