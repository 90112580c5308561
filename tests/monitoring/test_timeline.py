"""How a job's events and attempts are shaped for the job detail page."""

from datetime import UTC, datetime, timedelta

import pytest

from jobs.models import Job, JobRetryHistory, JobStatus
from monitoring.models import JobExecutionLog
from monitoring.timeline import AttemptClock, attempt_clock, attempt_rows, needs_attention_q, timeline_rows, too_quiet_q

T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def event(seconds, event_type, progress=None, attempt=1, message=""):
    return JobExecutionLog(
        event_type=event_type,
        timestamp=T0 + timedelta(seconds=seconds),
        status="running",
        progress=progress,
        message=message,
        details={"attempt": attempt},
    )


def test_consecutive_progress_reports_of_one_attempt_read_as_one_row():
    events = [
        event(0, "queued", attempt=1),
        event(1, "started", 0),
        *[event(1 + step, "progress", step * 10, message=f"step {step}") for step in range(1, 10)],
        event(11, "completed", 100),
    ]
    rows = timeline_rows(events)

    assert [(r.event_type, r.count) for r in rows] == [("queued", 1), ("started", 1), ("progress", 9), ("completed", 1)]
    progress = rows[2]
    assert (progress.progress_from, progress.progress, progress.message) == (10, 90, "step 9")
    assert (progress.timestamp, progress.until) == (T0 + timedelta(seconds=2), T0 + timedelta(seconds=10))
    # Time since the previous row counts from the end of a group, not its start.
    assert rows[3].since_previous == 1.0
    assert [r.since_start for r in rows] == [0.0, 1.0, 2.0, 11.0]


def test_progress_of_different_attempts_stays_apart():
    events = [event(0, "progress", 50, attempt=1), event(5, "progress", 10, attempt=2)]
    assert [r.attempt for r in timeline_rows(events)] == [1, 2]


def test_an_event_without_an_attempt_number_belongs_to_the_latest_attempt_seen():
    started, progress = event(0, "started", 0, attempt=2), event(1, "progress", 50)
    progress.details = None
    assert [r.attempt for r in timeline_rows([started, progress])] == [2, 2]
    progress.details = {"attempt": "2"}  # not a number: ignored
    assert timeline_rows([progress])[0].attempt is None
    assert timeline_rows([]) == []


def test_the_date_is_shown_on_the_first_row_and_when_it_changes():
    rows = timeline_rows([event(0, "queued"), event(60, "started", 0), event(86400, "completed", 100)])
    assert [r.new_day for r in rows] == [True, False, True]


def attempt(number: int, started: float, ended: float | None, status: str, delay: int | None = None):
    """Attempt `number`, from `started` to `ended` seconds after T0 (None: still running)."""
    return JobRetryHistory(
        attempt_number=number,
        started_at=T0 + timedelta(seconds=started),
        completed_at=None if ended is None else T0 + timedelta(seconds=ended),
        status=status,
        retry_delay_seconds=delay,
    )


def test_attempts_show_how_long_they_ran_and_how_long_the_retry_waited():
    first, second = attempt(1, 0, 2, "failed"), attempt(2, 5, None, "running", delay=2)
    rows = attempt_rows([first, second])
    assert [(r.duration, r.planned_delay, r.waited) for r in rows] == [(2.0, None, None), (None, 2, 3.0)]


def test_an_attempt_taken_back_from_a_lost_worker_ran_until_its_last_heartbeat_not_until_the_sweep():
    # The worker's last heartbeat came 15 s in; the sweep took the attempt back 30 s later. The
    # error event says it ran 15 s: the attempts table must say the same, and the retry waited from
    # the take-back.
    lost, retried = attempt(1, 0, 45, "failed"), attempt(2, 47, None, "running", delay=2)
    taken_back = event(45, "error", attempt=1)
    taken_back.execution_time_ms = 15_000
    rows = attempt_rows([lost, retried], [event(0, "started"), taken_back, event(47, "started", attempt=2)])
    assert [(r.duration, r.waited) for r in rows] == [(15.0, None), (None, 2.0)]


def test_an_attempt_retried_by_hand_waited_from_the_request_not_from_the_failure_before_it():
    """Failed for good at 3 s, retried by an operator at 60 s, started 2.7 s later: it waited 2.7 s
    (the job sat failed meanwhile); an operator read "60 s" beside "+2.7 s started"."""
    failed, retried = attempt(1, 0, 3, "failed"), attempt(2, 62.7, None, "running")
    request = event(60, "retry", attempt=2, message="retry requested by admin: attempt 2 queued")
    request.details["manual"] = True

    rows = attempt_rows([failed, retried], [event(0, "started"), event(3, "error"), request])

    assert [(r.planned_delay, r.waited) for r in rows] == [(None, None), (None, 2.7)]
    assert attempt_rows([failed, retried], [])[1].waited == 59.7  # the request not at hand: from the failure


def test_an_attempt_whose_outcome_event_is_not_at_hand_ran_from_its_start_to_its_end():
    # e.g. beyond the last events shown on a long job's page
    only = attempt(1, 0, 3, "completed")
    unmeasured = event(3, "completed", 100, attempt=1)
    assert attempt_rows([only], [unmeasured])[0].duration == 3.0
    assert attempt_rows([only], [])[0].duration == 3.0


def running_for(seconds: float, *, silent: float, job_type: str = "ai_matching", status=JobStatus.RUNNING):
    """attempt_clock of an attempt started `seconds` ago whose last report was `silent` seconds ago."""
    now = T0 + timedelta(seconds=seconds)
    job = Job(job_type=job_type, status=status, attempt_started_at=T0, updated_at=now - timedelta(seconds=silent))
    return attempt_clock(job, now)


def test_an_attempt_is_flagged_from_80_percent_of_its_timeout_or_a_quarter_of_it_without_a_report(settings):
    settings.JOBS = {**settings.JOBS, "TYPES": {"short": {"timeout": 100}}}
    assert running_for(90, silent=1).left == 510  # ai_matching: 600 s
    assert not running_for(479, silent=149).warning
    assert running_for(480, silent=1).near_timeout and not running_for(480, silent=1).too_quiet
    assert running_for(200, silent=150).too_quiet and not running_for(200, silent=150).near_timeout
    # A short timeout: a minute's silence at least, not a quarter of it.
    assert not running_for(59, silent=59, job_type="short").too_quiet
    assert running_for(60, silent=60, job_type="short").too_quiet
    assert running_for(5, silent=0, status=JobStatus.QUEUED) is None


def test_a_worker_that_missed_three_heartbeats_is_flagged_before_its_attempt_is_taken_back(settings):
    """A killed worker's job looked alive for the 30 s before the sweep took it back."""
    settings.JOBS = {**settings.JOBS, "HEARTBEAT_INTERVAL": 5.0, "STALE_AFTER": 30.0}

    def beaten(seconds_ago: float | None) -> AttemptClock:
        now = T0 + timedelta(seconds=20)
        heartbeat = None if seconds_ago is None else now - timedelta(seconds=seconds_ago)
        job = Job(job_type="ai_matching", status=JobStatus.RUNNING, attempt_started_at=T0, updated_at=now)
        job.heartbeat_at = heartbeat
        return attempt_clock(job, now)

    assert not beaten(14.9).heartbeat_late and not beaten(14.9).warning
    assert beaten(15).heartbeat_late and beaten(15).warning and not beaten(15).too_quiet
    assert beaten(15).heartbeat_age == 15 and beaten(15).stale_after == 30
    assert not beaten(None).heartbeat_late  # not written yet: nothing to judge


@pytest.mark.django_db
def test_the_database_filters_flag_exactly_the_attempts_the_clock_flags(settings):
    """The overview counts, the list filters and the health check lists flagged jobs in the
    database; the rows flag them with attempt_clock. Both must agree, limits included."""
    settings.JOBS = {
        **settings.JOBS,
        "HEARTBEAT_INTERVAL": 5.0,
        "DEFAULT_TIMEOUT": 1200,
        "TYPES": {"short": {"timeout": 100}},
    }
    now = T0 + timedelta(hours=1)
    # ai_matching: 600 s registered; short: 100 s configured; gone.type: neither, the default.
    jobs = [
        Job(
            job_type=job_type,
            parameters={},
            status=JobStatus.RUNNING,
            attempt_started_at=now - timedelta(seconds=started),
            updated_at=now - timedelta(seconds=min(silent, started)),
            heartbeat_at=now - timedelta(seconds=beat),
        )
        for job_type in ("ai_matching", "short", "gone.type")
        for started in (30, 59, 60, 79, 80, 149, 150, 299, 300, 480, 959, 960, 2000)
        for silent in (0, 59, 60, 149, 150, 299, 300)
        for beat in (1, 15)
    ]
    jobs += [
        Job(job_type="short", parameters={}, status=JobStatus.QUEUED, updated_at=now - timedelta(hours=1)),
        Job(job_type="short", parameters={}, status=JobStatus.RUNNING, updated_at=now - timedelta(hours=1)),
    ]
    Job.objects.bulk_create(jobs)
    saved = list(Job.objects.all())

    def clocked(flag: str) -> set:
        return {job.id for job in saved if (clock := attempt_clock(job, now)) and getattr(clock, flag)}

    def filtered(q) -> set:
        return set(Job.objects.filter(q).values_list("id", flat=True))

    assert filtered(too_quiet_q(now)) == clocked("too_quiet")
    assert filtered(needs_attention_q(now)) == clocked("warning")
    # Neither everything nor nothing: the limits fall inside the grid.
    assert 0 < len(clocked("too_quiet")) < len(clocked("warning")) < len(saved)
