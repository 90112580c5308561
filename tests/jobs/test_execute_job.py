"""One attempt run in-process, as a django-q2 worker runs it (jobs.tasks.run_job)."""

import json
import os
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.db import OperationalError
from django.utils import timezone
from django_q.exceptions import TimeoutException

from jobs.context import JobContext, StopSignal
from jobs.errors import JobCancelled
from jobs.manager import EnhancedJobManager, job_manager
from jobs.models import Job, JobRetryHistory, JobStatus, RetryStatus
from jobs.payloads import MAX_JSON_BYTES
from jobs.registry import job_executor
from jobs.signals import job_finished
from jobs.tasks import run_job
from monitoring.controller import MonitoringController
from monitoring.models import EventType, JobExecutionLog
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def events(job):
    return list(
        JobExecutionLog.objects.filter(job=job).order_by("timestamp", "created_at").values_list("event_type", "status")
    )


@pytest.fixture
def finished_jobs():
    seen = []

    def receiver(sender, job, **kwargs):
        seen.append((job.id, job.status))

    job_finished.connect(receiver)
    yield seen
    job_finished.disconnect(receiver)


def test_a_job_runs_reports_progress_and_completes(django_capture_on_commit_callbacks, finished_jobs, settings):
    settings.JOBS = {**settings.JOBS, "PROGRESS_INTERVAL": 0}
    job = job_manager.submit_job("test.progress", {"reports": [25, 50, 75]})

    with django_capture_on_commit_callbacks(execute=True):
        assert run_job(str(job.id), 1) == {"job_id": str(job.id), "attempt": 1, "ran": True}

    job.refresh_from_db()
    assert (job.status, job.progress, job.attempts, job.result) == (JobStatus.COMPLETED, 100, 1, {"done": True})
    assert job.started_at and job.finished_at and job.worker.endswith(f":{__import__('os').getpid()}")
    assert events(job) == [
        ("queued", "queued"),
        ("started", "running"),
        ("progress", "running"),
        ("progress", "running"),
        ("progress", "running"),
        ("completed", "completed"),
    ]
    completed = job.logs.get(event_type=EventType.COMPLETED)
    assert completed.execution_time_ms >= 0 and completed.memory_usage_mb > 0
    assert completed.details == {"attempt": 1, "result": {"done": True}}
    attempt = JobRetryHistory.objects.get(job=job)
    assert (attempt.attempt_number, attempt.status, attempt.retry_delay_seconds) == (1, RetryStatus.SUCCESS, None)
    assert attempt.completed_at is not None
    assert finished_jobs == [(job.id, JobStatus.COMPLETED)]


def test_a_second_delivery_of_the_same_attempt_does_not_run_it_again():
    job = job_manager.submit_job("test.echo", {"n": 1})
    assert run_job(str(job.id), 1)["ran"] is True
    assert run_job(str(job.id), 1)["ran"] is False
    assert job.logs.filter(event_type=EventType.STARTED).count() == 1
    assert JobRetryHistory.objects.filter(job=job).count() == 1


def test_an_attempt_taken_back_as_lost_cannot_record_its_outcome_over_the_next_attempt():
    """The sweep gave attempt 1 up and attempt 2 runs elsewhere: attempt 1's late result is
    ignored, or the job would read completed while attempt 2 still runs."""
    job = job_manager.submit_job("test.outlived_by_its_retry", {})

    run_job(str(job.id), 1)

    job.refresh_from_db()
    assert (job.status, job.attempts, job.result) == (JobStatus.RUNNING, 2, None)
    assert not job.logs.filter(event_type=EventType.COMPLETED).exists()
    attempts = dict(JobRetryHistory.objects.filter(job=job).values_list("attempt_number", "status"))
    assert attempts == {1: RetryStatus.FAILED, 2: RetryStatus.RUNNING}


def test_an_attempt_that_is_not_next_is_refused():
    job = job_manager.submit_job("test.echo", {})
    assert run_job(str(job.id), 2)["ran"] is False
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 0)


@time_machine.travel(NOW, tick=False)
def test_a_transient_failure_is_scheduled_for_retry_with_backoff(settings):
    settings.JOBS = {**settings.JOBS, "RETRY": {"max_attempts": 3, "base_delay": 1.0, "max_delay": 300.0}}
    job = job_manager.submit_job("test.raise", {"kind": "transient"})

    run_job(str(job.id), 1)

    job.refresh_from_db()
    assert job.status == JobStatus.RETRYING
    assert job.error_class == "transient"
    assert 2.2 <= job.retry_delay <= 2.6  # 1 s * 2**1, plus 10-30 %
    assert job.next_attempt_at == NOW + timedelta(seconds=job.retry_delay)
    assert job.last_error["type"] == "ConnectionResetError"
    assert job.last_error["hint"] == "Retried automatically with backoff."
    error = job.logs.get(event_type=EventType.ERROR)
    assert error.status == JobStatus.RETRYING
    assert error.message == "ConnectionResetError: connection reset by peer"
    assert error.error_details["error_class"] == "transient"
    assert error.error_details["retryable"] is True
    assert "Traceback (most recent call last)" in error.error_details["traceback"]
    assert error.details["next_attempt_at"] is not None and error.details["attempt"] == 1
    attempt = JobRetryHistory.objects.get(job=job)
    assert (attempt.status, attempt.error_message) == ("failed", "ConnectionResetError: connection reset by peer")


def test_a_data_error_fails_the_job_at_once(django_capture_on_commit_callbacks, finished_jobs):
    job = job_manager.submit_job("test.raise", {"kind": "data", "message": "candidate 7 has no email"})
    with django_capture_on_commit_callbacks(execute=True):
        run_job(str(job.id), 1)
    job.refresh_from_db()
    assert (job.status, job.error_class, job.attempts) == (JobStatus.FAILED, "data", 1)
    assert job.next_attempt_at is None and job.finished_at is not None
    assert job.last_error["hint"] == "Not retried: the input is invalid; fix it and resubmit."
    assert finished_jobs == [(job.id, JobStatus.FAILED)]


def test_a_failure_with_a_long_non_ascii_message_keeps_its_class_fingerprint_and_traceback(
    django_capture_on_commit_callbacks,
):
    """Drill: a data error whose message was 200 kB of CJK text and emoji (6 or 12 bytes a
    character in escaped JSON) made the error record larger than an event may hold: it was
    replaced by a summary, and with it the traceback, the class and the fingerprint; the job
    page showed no traceback and the errors page filed the failure as "unknown"."""
    message = "候选人记录无效 ✗ 😀 " * 3_000  # 36,000 characters
    job = job_manager.submit_job("test.raise", {"kind": "data", "message": message})
    with django_capture_on_commit_callbacks(execute=True):
        run_job(str(job.id), 1)

    error = JobExecutionLog.objects.get(job=job, event_type=EventType.ERROR).error_details
    job.refresh_from_db()
    assert "truncated" not in error
    assert (error["type"], error["error_class"]) == ("ValueError", "data")
    assert error["fingerprint"] == job.last_error["fingerprint"]
    assert error["message"] == message[:10_000]
    # The frames are kept; the message's line in the traceback is cut short.
    assert "in raise_error" in error["traceback"] and error["traceback"].rstrip().endswith("…")
    assert len(json.dumps(error)) <= MAX_JSON_BYTES


def test_the_last_allowed_attempt_fails_for_good(django_capture_on_commit_callbacks):
    job = job_manager.submit_job("test.raise", {"kind": "transient"}, max_attempts=1)
    run_job(str(job.id), 1)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.last_error["hint"] == "Not retried: all 1 attempts used."


def test_a_lost_database_connection_inside_the_job_is_transient():
    job = job_manager.submit_job("test.raise", {"kind": "database"})
    run_job(str(job.id), 1)
    job.refresh_from_db()
    assert (job.status, job.error_class) == (JobStatus.RETRYING, "transient")


def test_a_job_type_no_longer_registered_is_a_configuration_error():
    job = job_manager.submit_job("test.echo", {})
    Job.objects.filter(id=job.id).update(job_type="retired.type")
    run_job(str(job.id), 1)
    job.refresh_from_db()
    assert (job.status, job.error_class) == (JobStatus.FAILED, "configuration")
    assert "unknown job type 'retired.type'" in job.message


def test_django_q2_timeout_is_recorded_as_a_timeout_then_passed_on():
    job = job_manager.submit_job("test.timeout", {})
    # Passed on so that django-q2 replaces the worker process, as after any timeout.
    with pytest.raises(TimeoutException):
        run_job(str(job.id), 1)
    job.refresh_from_db()
    assert job.status == JobStatus.RETRYING
    assert job.last_error["type"] == "jobs.errors.JobTimeoutError"
    assert "ran past its 600s timeout" in job.message


def test_nan_and_infinity_in_a_result_or_details_are_summarised_and_the_job_completes(settings):
    settings.JOBS = {**settings.JOBS, "PROGRESS_INTERVAL": 0.0}
    job = job_manager.submit_job("test.not_json_numbers")

    job_manager.execute_job_sync(job.id, 1)

    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED  # Postgres' jsonb would refuse NaN: nothing may try to store it
    assert job.result["truncated"] is True and "not JSON compliant" in job.result["reason"]
    assert job.result["preview"] == '{"score": Infinity}'
    progress = JobExecutionLog.objects.get(job=job, event_type=EventType.PROGRESS)
    assert progress.details["truncated"] is True and '"score": NaN' in progress.details["preview"]


def test_cancel_requested_while_running_stops_the_job(django_capture_on_commit_callbacks, finished_jobs, settings):
    settings.JOBS = {**settings.JOBS, "PROGRESS_INTERVAL": 0}
    job = job_manager.submit_job("test.until_cancelled", {"cancel_self": True})
    with django_capture_on_commit_callbacks(execute=True):
        run_job(str(job.id), 1)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert events(job)[-2:] == [("cancel_requested", "running"), ("cancelled", "cancelled")]
    assert job.logs.get(event_type=EventType.CANCEL_REQUESTED).message == "cancel requested by bob"
    assert JobRetryHistory.objects.get(job=job).status == RetryStatus.CANCELLED
    assert finished_jobs == [(job.id, JobStatus.CANCELLED)]


def test_a_cancel_noticed_at_a_progress_report_says_an_operator_cancelled_it(settings):
    settings.JOBS = {**settings.JOBS, "PROGRESS_INTERVAL": 0}
    job = job_manager.submit_job("test.until_cancelled", {"cancel_self": True, "report_progress": True})
    run_job(str(job.id), 1)
    job.refresh_from_db()
    assert (job.status, job.message) == (JobStatus.CANCELLED, "cancelled: cancelled by an operator")
    assert job.logs.get(event_type=EventType.CANCELLED).message == "attempt 1 stopped: cancelled by an operator"


def test_a_job_cancelled_while_running_is_not_retried_when_its_attempt_then_fails(
    django_capture_on_commit_callbacks, finished_jobs
):
    job = job_manager.submit_job("test.cancelled_then_fails")
    with django_capture_on_commit_callbacks(execute=True):
        run_job(str(job.id), 1)

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED  # not retrying: the operator's cancel wins
    assert (job.next_attempt_at, job.attempts) == (None, 1)
    assert events(job)[-3:] == [("cancel_requested", "running"), ("error", "cancelled"), ("cancelled", "cancelled")]
    assert job.message.startswith("cancelled: attempt 1 failed after a cancel was requested")
    assert JobRetryHistory.objects.get(job=job).status == RetryStatus.FAILED
    assert finished_jobs == [(job.id, JobStatus.CANCELLED)]
    assert job_manager.dispatch_due_retries(now=timezone.now() + timedelta(hours=1)) == 0


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_progress_is_throttled_but_the_first_the_last_and_100_percent_are_kept():
    clock = FakeClock()
    manager = EnhancedJobManager(monitoring=MonitoringController(progress_interval=1.0, clock=clock))
    job = job_manager.submit_job("test.echo", {})
    manager._claim(job.id, 1)

    for percent in (10, 20, 30):  # within one interval: only the first is written
        assert manager.monitoring.update_job_progress_sync(job.id, percent, attempt=1)
    clock.now += 1.0
    manager.monitoring.update_job_progress_sync(job.id, 40, attempt=1)  # an interval later: written
    manager.monitoring.update_job_progress_sync(job.id, 50, attempt=1)  # held back...
    manager.monitoring.update_job_progress_sync(job.id, 60, attempt=1)  # ...replaced by the latest
    manager.monitoring.flush_progress_sync(job.id)  # the job ends: the last report is written
    manager.monitoring.update_job_progress_sync(job.id, 100, attempt=1)  # always written

    written = list(
        job.logs.filter(event_type=EventType.PROGRESS).order_by("timestamp").values_list("progress", flat=True)
    )
    assert written == [10, 40, 60, 100]
    job.refresh_from_db()
    assert job.progress == 100


def test_an_event_that_cannot_be_written_waits_and_the_job_goes_on(monkeypatch, settings):
    """The database drops out during a progress report: the job completes, the event follows."""
    settings.JOBS = {**settings.JOBS, "PROGRESS_INTERVAL": 0}
    monitoring = MonitoringController()
    manager = EnhancedJobManager(monitoring=monitoring)
    job = job_manager.submit_job("test.progress", {"reports": [30, 60]})
    failures = iter([True])

    def flaky(write):
        def first_call_fails(self, job_id, report):
            if next(failures, False):
                raise OperationalError("the database system is shutting down")
            return write(self, job_id, report)

        return first_call_fails

    for name in ("_write_progress_orm", "_write_progress_postgres"):  # whichever this database uses
        monkeypatch.setattr(MonitoringController, name, flaky(getattr(MonitoringController, name)))
    manager.execute_job_sync(job.id, 1)

    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    assert next(failures, "used") == "used"  # the failure did happen
    assert len(monitoring.pending) == 0
    progress = list(
        job.logs.filter(event_type=EventType.PROGRESS).order_by("timestamp").values_list("progress", flat=True)
    )
    assert progress == [30, 60]  # the one that failed was written later, in order


def test_a_progress_report_tells_the_job_to_stop_once_it_is_no_longer_its_own():
    monitoring = MonitoringController(progress_interval=0)
    job = job_manager.submit_job("test.echo", {})
    job_manager._claim(job.id, 1)

    assert monitoring.update_job_progress_sync(job.id, 10, attempt=1) is True
    assert monitoring.update_job_progress_sync(job.id, 20, attempt=2) is False  # another attempt's now
    Job.objects.filter(id=job.id).update(cancel_requested_at=timezone.now())
    assert monitoring.update_job_progress_sync(job.id, 30, attempt=1) is False
    Job.objects.filter(id=job.id).update(cancel_requested_at=None, status=JobStatus.RETRYING)
    assert monitoring.update_job_progress_sync(job.id, 40, attempt=1) is False

    assert list(job.logs.filter(event_type=EventType.PROGRESS).values_list("progress", flat=True)) == [10]
    job.refresh_from_db()
    assert job.progress == 10


def test_a_cancellation_check_stops_an_attempt_that_is_no_longer_the_one_running():
    """An executor that never reports progress still learns, at ctx.check_cancelled() or from its
    heartbeat, that its attempt was taken back: it must stop rather than run beside the next one."""
    job = job_manager.submit_job("test.echo", {})
    job = job_manager._claim(job.id, 1)
    ctx = JobContext(job, 1, MonitoringController(progress_interval=0), StopSignal())
    Job.objects.filter(id=job.id).update(attempts=2)  # taken back; attempt 2 now runs elsewhere

    with pytest.raises(JobCancelled, match="no longer running this attempt"):
        ctx.check_cancelled()


def test_an_attempt_after_a_retry_records_the_delay_it_waited_for():
    job = JobFactory(job_type="test.echo", status=JobStatus.QUEUED, attempts=1, retry_delay=2.4)

    run_job(str(job.id), 2)

    attempt = JobRetryHistory.objects.get(job=job, attempt_number=2)
    assert (attempt.status, attempt.retry_delay_seconds) == (RetryStatus.SUCCESS, 2)


def test_a_jobs_started_at_stays_when_its_first_attempt_started():
    first_started = timezone.now() - timedelta(minutes=5)
    job = JobFactory(job_type="test.echo", status=JobStatus.QUEUED, attempts=1, started_at=first_started)

    run_job(str(job.id), 2)

    job.refresh_from_db()
    assert job.started_at == first_started
    assert job.attempt_started_at > first_started


def outcome_write_fails(monkeypatch, *, times: int) -> list:
    """The attempt's outcome write fails `times` times, as during a database restart, then
    succeeds. Returns the moments it failed (filled in as it happens)."""
    failed_at = []
    real = MonitoringController.complete_job_monitoring_sync

    def unavailable_for_a_while(self, *args, **kwargs):
        if len(failed_at) < times:
            failed_at.append(timezone.now())
            raise OperationalError("the database system is starting up")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MonitoringController, "complete_job_monitoring_sync", unavailable_for_a_while)
    return failed_at


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has its own connection
def test_the_heartbeat_goes_on_while_the_outcome_waits_out_an_outage(monkeypatch, fast_jobs):
    """Until its outcome is written the attempt is alive, and says so: otherwise the sweep would
    take it back as abandoned the moment the database answers, and its real outcome be ignored."""
    manager = EnhancedJobManager(monitoring=MonitoringController())
    job = job_manager.submit_job("test.echo", {})
    failed_at = outcome_write_fails(monkeypatch, times=3)  # the write and two flushes: about 0.75 s

    manager.execute_job_sync(job.id, 1)

    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    assert len(failed_at) == 3
    assert job.heartbeat_at > failed_at[0] + timedelta(seconds=fast_jobs["HEARTBEAT_INTERVAL"])


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has its own connection
def test_an_outcome_waits_out_an_outage_however_long_it_lasts(monkeypatch, fast_jobs):
    """Giving up after a while would leave the attempt "running" without a heartbeat: the sweep
    would take the finished job back as abandoned and run it again."""
    manager = EnhancedJobManager(monitoring=MonitoringController())
    manager.outcome_patience = 0.3  # the outage below outlasts several rounds of patience
    job = job_manager.submit_job("test.echo", {})
    failures = outcome_write_fails(monkeypatch, times=5)  # about 0.25 + 0.25 + 0.5 + 0.25 + 0.25 s of backoff

    manager.execute_job_sync(job.id, 1)

    job.refresh_from_db()
    assert len(failures) == 5
    assert job.status == JobStatus.COMPLETED
    assert job.result == {"echo": {}}
    assert len(manager.monitoring.pending) == 0


def test_the_progress_write_is_a_prepared_statement_on_postgres(postgres_only):
    """Django turns psycopg's prepared statements off unless told otherwise, and psycopg then
    ignores prepare=True: the statement was parsed and planned again on every report (about
    130 µs more each, docs/benchmark.md)."""
    from django.db import connection

    monitoring = MonitoringController(progress_interval=0)
    job = job_manager.submit_job("test.echo", {})
    job_manager._claim(job.id, 1)

    assert monitoring.update_job_progress_sync(job.id, 10, attempt=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%UPDATE jobs%%'")
        assert cursor.fetchone()[0] == 1


@pytest.mark.django_db(transaction=True)
def test_an_outcome_whose_failed_receiver_cannot_be_undone_is_kept_and_written_later(monkeypatch, fast_jobs):
    """A job_finished receiver fails (a bug) just as the connection breaks, so undoing its writes
    fails too: the outcome cannot commit then, and must be kept, not rolled back in silence."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    real_rollback = BaseDatabaseWrapper.savepoint_rollback
    connection_breaks = []

    def savepoint_rollback(self, sid):
        if connection_breaks:
            connection_breaks.clear()
            raise OperationalError("server closed the connection unexpectedly")
        return real_rollback(self, sid)

    calls = []

    def buggy_receiver(sender, job, **kwargs):
        calls.append(job.id)
        if len(calls) == 1:  # the connection breaks once; the bug stays
            connection_breaks.append(True)
        raise ValueError("receiver bug")

    monkeypatch.setattr(BaseDatabaseWrapper, "savepoint_rollback", savepoint_rollback)
    manager = EnhancedJobManager(monitoring=MonitoringController())
    job = job_manager.submit_job("test.echo", {})
    job_finished.connect(buggy_receiver, dispatch_uid="test-buggy-receiver")
    try:
        manager.execute_job_sync(job.id, 1)
    finally:
        job_finished.disconnect(dispatch_uid="test-buggy-receiver")

    # Kept, then written at the end of the job: completed once (the receiver's second failure undone).
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED and len(manager.monitoring.pending) == 0
    assert JobExecutionLog.objects.filter(job=job, event_type=EventType.COMPLETED).count() == 1
    assert len(calls) == 2


def test_a_task_its_stopping_node_hands_back_is_enqueued_again_untouched(monkeypatch):
    """jobs.tasks.run_job on a node told to stop: the attempt does not start; its task goes back
    to the broker for another node (tests/reliability/test_node_stopped.py runs real nodes)."""
    from django_q.models import OrmQ

    from jobs.queue import shared_broker

    monkeypatch.setattr("jobs.queue.node_stopping", lambda: True)
    job = JobFactory(job_type="test.echo", status=JobStatus.QUEUED, attempts=0)
    cancelled = JobFactory(job_type="test.echo", status=JobStatus.CANCELLED, attempts=0)

    assert run_job(str(job.id), 1) == {"job_id": str(job.id), "attempt": 1, "ran": False, "handed_back": True}
    assert run_job(str(cancelled.id), 1)["handed_back"] is False  # nothing to give back

    job.refresh_from_db()
    assert (job.status, job.attempts, job.started_at) == (JobStatus.QUEUED, 0, None)
    assert not job.logs.filter(event_type=EventType.STARTED).exists()
    # Its timeline says why it waits again (a drill saw a restart there with nothing to explain it).
    (handed_back,) = job.logs.filter(event_type=EventType.QUEUED)
    assert handed_back.message.startswith("attempt 1 handed back by ") and handed_back.message.endswith(
        ": its node is stopping; queued again"
    )
    assert not cancelled.logs.exists()
    # Ahead of the jobs waiting: it had reached the head of the queue.
    assert [(task.key, task.task["args"]) for task in OrmQ.objects.all()] == [
        (shared_broker().urgent_key, (str(job.id), 1))
    ]


def _report_node_stopping(go, answers):
    """A worker's task, twice: before its node is told to stop, then right after."""
    from jobs.queue import node_stopping

    answers.put(node_stopping())
    go.wait(10)
    answers.put(node_stopping())


def test_a_worker_sees_its_node_stopping_the_moment_the_stop_is_asked():
    """django-q2 forks each worker from its node's sentinel; the worker reads the node's stop
    event, which the node's SIGTERM handler sets, not the status the sentinel saves every half
    second (looked at once a second, that let a CI run start two tasks after the stop)."""
    import multiprocessing

    from django_q.cluster import Sentinel

    fork = multiprocessing.get_context("fork")
    self = Sentinel.__new__(Sentinel)  # as in Sentinel.spawn_process, where django-q2 forks a worker
    self.stop_event, go, answers = fork.Event(), fork.Event(), fork.Queue()
    self.parent_pid = os.getppid()  # this process plays the sentinel, whose parent is the node's main process
    worker = fork.Process(target=_report_node_stopping, args=(go, answers))
    worker.start()
    assert answers.get(timeout=10) is False

    self.stop_event.set()  # what the node's main process does on SIGTERM
    go.set()

    assert answers.get(timeout=10) is True  # at once: no status to wait for
    worker.join(10)


def test_a_worker_whose_nodes_main_process_is_gone_stops_the_node():
    """django-q2's sentinel never looks at its parent: after a SIGKILL of a node's main process,
    its workers went on taking tasks. The sentinel's parent is not the main process any more; the
    worker sees it before its next task and sets the stop event, as the SIGTERM handler would."""
    import multiprocessing

    from django_q.cluster import Sentinel

    fork = multiprocessing.get_context("fork")
    self = Sentinel.__new__(Sentinel)
    self.stop_event, go, answers = fork.Event(), fork.Event(), fork.Queue()
    self.parent_pid = -1  # the main process it was started by: not this process's parent any more
    worker = fork.Process(target=_report_node_stopping, args=(go, answers))
    worker.start()

    assert answers.get(timeout=10) is True
    assert self.stop_event.is_set()  # so the sentinel stops the node
    go.set()
    worker.join(10)


@pytest.mark.django_db(transaction=True)  # the claim must really commit
def test_a_claim_committed_as_its_connection_broke_runs_its_attempt(monkeypatch, fast_jobs):
    """The connection breaks as the claim commits: the server committed it, the worker got an
    OperationalError instead of the answer. Its next try is refused (the attempt is running), and
    the attempt must still run here, not wait "running" for the sweep to fail it as a lost worker
    (on a job's last attempt, failed for good without ever running)."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    from jobs import manager as manager_module

    job = job_manager.submit_job("test.echo", {}, max_attempts=1)
    real_commit = BaseDatabaseWrapper.commit
    commits = []

    def commit_then_break(self):
        real_commit(self)
        commits.append(True)
        if len(commits) == 1:  # the claim's commit: done on the server, its answer lost
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(BaseDatabaseWrapper, "commit", commit_then_break)
    pauses = []
    monkeypatch.setattr(manager_module, "time", SimpleNamespace(sleep=pauses.append))  # no backoff waited
    manager = EnhancedJobManager(monitoring=MonitoringController())

    assert manager.execute_job_sync(job.id, 1) == {"job_id": str(job.id), "attempt": 1, "ran": True}

    job.refresh_from_db()
    assert (job.status, job.attempts, job.result) == (JobStatus.COMPLETED, 1, {"echo": {}})
    assert list(JobRetryHistory.objects.filter(job=job).values_list("attempt_number", "status")) == [
        (1, RetryStatus.SUCCESS)
    ]
    assert [e for e, _ in events(job)] == ["queued", "started", "completed"]
    assert len(pauses) == 1


@pytest.mark.django_db(transaction=True)  # the claim must really commit, or not
def test_a_claim_that_did_not_commit_leaves_the_attempt_to_a_worker_of_the_same_name(monkeypatch, fast_jobs):
    """The same, but the broken commit did not go through, and while this worker waits to try
    again another one claims the attempt: a worker in another container, of the same host name
    and pid. It runs there; here it is a duplicate, not this worker's claim to run twice."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    from jobs import manager as manager_module

    job = job_manager.submit_job("test.echo", {})
    real_commit = BaseDatabaseWrapper.commit

    def commit_fails_once(self):
        monkeypatch.setattr(BaseDatabaseWrapper, "commit", real_commit)
        self.rollback()
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(BaseDatabaseWrapper, "commit", commit_fails_once)
    other_worker = EnhancedJobManager(monitoring=MonitoringController())
    # While this worker waits, the other one claims the attempt (claimed, not yet run).
    waited = SimpleNamespace(sleep=lambda seconds: other_worker._claim(job.id, 1))
    monkeypatch.setattr(manager_module, "time", waited)

    assert job_manager.execute_job_sync(job.id, 1)["ran"] is False

    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)
    assert [e for e, _ in events(job)] == ["queued", "started"]


class UnprintableError(Exception):
    """A library's exception whose message cannot be rendered: its __str__ reads an attribute
    its constructor never set."""

    def __str__(self):
        return self.detail


@job_executor("test.unprintable_error")
def raise_unprintable(params, ctx):
    raise UnprintableError()


def test_an_error_whose_message_cannot_be_rendered_is_recorded_as_the_attempts_failure():
    """Recording the failure must not fail in its turn: the worker would leave the attempt
    "running" without an outcome, for the sweep to take back as a lost worker and run again,
    each attempt alike, until the job failed as WorkerLostError with its own error never seen."""
    job = job_manager.submit_job("test.unprintable_error", {})

    assert job_manager.execute_job_sync(job.id, 1)["ran"] is True

    job.refresh_from_db()
    assert (job.status, job.attempts, job.error_class) == (JobStatus.RETRYING, 1, "system")
    assert job.last_error["type"].endswith("UnprintableError")
    assert job.last_error["message"] == "<unprintable UnprintableError>"
    assert "AttributeError" not in job.message
    assert [e for e, _ in events(job)] == ["queued", "started", "error"]


leaked_files = []


@job_executor("test.leaks_file_descriptors")
def leak_file_descriptors(params, ctx):
    while True:  # until the process may open no more: OSError EMFILE, a system error
        leaked_files.append(open(os.devnull))


@pytest.fixture
def few_file_descriptors(db):
    """A job of test.leaks_file_descriptors, submitted; then this process may open 30 more files
    than it has open, until the test ends and closes those the job leaked."""
    import resource

    job = job_manager.submit_job("test.leaks_file_descriptors", {})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 30, hard))
    yield job
    for leaked in leaked_files:
        leaked.close()
    leaked_files.clear()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc (Linux)")
def test_a_job_that_used_up_the_workers_file_descriptors_has_its_failure_recorded(few_file_descriptors):
    """Measuring the worker's memory for the error event opens /proc/self/statm: it failed with
    the job's own EMFILE, the failure went unrecorded and the attempt stayed "running" for the
    sweep to fail as a lost worker. The event goes without its memory figure instead."""
    job = Job.objects.get(id=few_file_descriptors.id)

    assert job_manager.execute_job_sync(job.id, 1)["ran"] is True

    job.refresh_from_db()
    assert (job.status, job.attempts, job.error_class) == (JobStatus.RETRYING, 1, "system")
    assert job.message.startswith("OSError: [Errno 24] Too many open files")
    assert job.logs.get(event_type=EventType.ERROR).memory_usage_mb is None
