"""How a job's events and attempts are shaped for the job detail page."""

from datetime import UTC, datetime, timedelta

from jobs.models import JobRetryHistory
from monitoring.models import JobExecutionLog
from monitoring.timeline import attempt_rows, timeline_rows

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


def test_attempts_show_how_long_they_ran_and_how_long_the_retry_waited():
    first = JobRetryHistory(attempt_number=1, started_at=T0, completed_at=T0 + timedelta(seconds=2), status="failed")
    second = JobRetryHistory(
        attempt_number=2,
        started_at=T0 + timedelta(seconds=5),
        completed_at=None,
        status="running",
        retry_delay_seconds=2,
    )
    rows = attempt_rows([first, second])
    assert [(r.duration, r.planned_delay, r.waited) for r in rows] == [(2.0, None, None), (None, 2, 3.0)]
