"""The design's EnhancedJobManager: submit, run, retry and cancel jobs through django-q2.

Every state change is a conditional UPDATE of the job row (status and attempt number
in the WHERE clause), so with any number of workers and web processes:
- an attempt runs at most once, even when django-q2 delivers its task twice;
- the outcome of an attempt is recorded once, by whoever changes the row first;
- nothing depends on memory shared between processes.
"""

import logging
import os
import signal
import threading
import time
from datetime import timedelta
from functools import partial

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, models, transaction
from django.db.models.functions import Coalesce
from django_q.brokers import Broker
from django_q.exceptions import TimeoutException

from jobs import clock
from jobs.context import Heartbeat, JobContext, StopSignal
from jobs.db import DbNow, heartbeats_stale_before
from jobs.errors import (
    ConfigurationJobError,
    ErrorHandler,
    JobCancelled,
    JobTimeoutError,
    WorkerLostError,
    error_details,
)
from jobs.idempotency import IdempotencyKeyTaken, remember_key, replayed_job, request_hash
from jobs.models import (
    MAX_PAUSE_REASON_CHARS,
    RETRYABLE_STATUSES,
    Job,
    JobRetryHistory,
    JobStatus,
    JobTypePause,
    RetryStatus,
)
from jobs.payloads import MAX_PARAMETERS_BYTES, PayloadError, checked_json, clip, to_json_value
from jobs.queue import enqueue_attempt
from jobs.registry import (
    InvalidJobParameters,
    JobExecutor,
    UnknownJobType,
    get_job_executor,
    registered_job_types,
    retry_manager_for,
    timeout_for,
)
from jobs.signals import job_finished
from monitoring.controller import MonitoringController, monitoring_controller
from monitoring.models import EventType
from monitoring.pending import DATABASE_UNAVAILABLE, reset_broken_connection

logger = logging.getLogger(__name__)

MAX_ATTEMPTS_LIMIT = 100


class JobNotFound(LookupError):
    pass


class JobStateConflict(Exception):
    """The job is not in a state that allows the operation (cancel a finished job…). `status`:
    the job's status that refused it, for a client to read without parsing the message (None
    when no one status did, e.g. a job that kept changing)."""

    def __init__(self, message: str, *, status: str | None = None):
        self.status = status
        super().__init__(message)


class AttemptNotNext(JobStateConflict):
    """A retry expecting another attempt than the next: the request's `attempt` is at fault
    (the API names it), not the job's state."""

    def __init__(self, job_id, attempts: int, attempt: int, *, status: str | None = None):
        self.next_attempt = attempts + 1
        super().__init__(
            f"job {job_id} has had {attempts} attempts; attempt {attempt} is not next (attempt {self.next_attempt} is)",
            status=status,
        )


def require_known_job_type(job_type: str) -> None:
    """Raises UnknownJobType for a name neither registered nor in the jobs' history: a typo that
    would pause nothing, or read as a type that did nothing. A type no longer registered whose
    jobs are still here is known."""
    if job_type not in registered_job_types() and not Job.objects.filter(job_type=job_type).exists():
        raise UnknownJobType(job_type)


def _disarm_task_timeout() -> None:
    """django-q2's task timeout is a SIGALRM raising TimeoutException wherever the worker's main
    thread is. Once the executor has returned (or raised), the outcome must be written whole:
    interrupted half-way it would be rolled back, and the sweep would take the finished attempt
    back as abandoned and run it again. django-q2's guard still replaces the worker a few seconds
    past the timeout if the outcome never gets written."""
    if threading.current_thread() is threading.main_thread():
        try:
            signal.alarm(0)
        except (AttributeError, ValueError):  # no SIGALRM on this platform
            pass


def worker_id() -> str:
    return f"{settings.WORKER_HOSTNAME}:{os.getpid()}"


def _last_sign_of_life(job: Job, started):
    """When a silent attempt was last seen alive: the later of its last heartbeat and its last
    progress report (heartbeats come every HEARTBEAT_INTERVAL, reports in between). One lookup
    on the (job, timestamp) index, for each job taken back."""
    reported = job.logs.filter(event_type=EventType.PROGRESS, timestamp__gte=started).aggregate(
        last=models.Max("timestamp")
    )["last"]
    return max(job.heartbeat_at, reported) if reported else job.heartbeat_at


class EnhancedJobManager:
    # Seconds between "still waiting" logs while an outcome waits out a database outage.
    outcome_patience = 30.0

    def __init__(self, monitoring: MonitoringController | None = None, error_handler: ErrorHandler | None = None):
        self.monitoring = monitoring or monitoring_controller
        self.error_handler = error_handler or ErrorHandler()

    def get_job_executor(self, job_type: str) -> JobExecutor:
        return get_job_executor(job_type)

    # --- submitting -------------------------------------------------------------------

    def submit_job(
        self,
        job_type: str,
        parameters: dict | None = None,
        *,
        max_attempts: int | None = None,
        submitted_by: str = "",
        idempotency_key: str | None = None,
        owner=None,
    ) -> Job:
        """Create the job row and hand its first attempt to django-q2 once committed.

        With an `idempotency_key` (per `owner`, a user), the same request sent again within
        IDEMPOTENCY_KEY_TTL answers the job the first one made; the returned job's `replayed`
        says which (jobs.idempotency).

        Raises UnknownJobType or InvalidJobParameters (each names what is wrong), and
        IdempotencyKeyReused for a key that made a job for another request.
        """
        if idempotency_key is None:
            return self._create_job(job_type, parameters, max_attempts=max_attempts, submitted_by=submitted_by)
        if owner is None:
            raise ValueError("an idempotency key needs its owner")
        key = {"owner": owner, "key": idempotency_key, "fingerprint": request_hash(job_type, parameters, max_attempts)}
        # Before validating: the request was valid when it made its job.
        job = replayed_job(**key, now=clock.now())
        if job is None:
            try:
                return self._create_job(
                    job_type, parameters, max_attempts=max_attempts, submitted_by=submitted_by, idempotency=key
                )
            except IdempotencyKeyTaken:
                # A submit with the key committed while this one ran (its job and event rolled back).
                job = replayed_job(**key, now=clock.now())
                if job is None:  # the winner's job is gone already (deleted): nothing to replay
                    raise
        job.replayed = True
        return job

    def _create_job(
        self,
        job_type: str,
        parameters: dict | None,
        *,
        max_attempts: int | None,
        submitted_by: str,
        idempotency: dict | None = None,
    ) -> Job:
        executor = self.get_job_executor(job_type)
        parameters = executor.validate_parameters(parameters)
        try:
            parameters = checked_json(parameters, MAX_PARAMETERS_BYTES)
        except PayloadError as e:
            raise InvalidJobParameters(job_type, [{"field": "parameters", "message": str(e)}]) from None
        if max_attempts is not None and not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise InvalidJobParameters(
                job_type, [{"field": "max_attempts", "message": f"must be between 1 and {MAX_ATTEMPTS_LIMIT}"}]
            )
        now = clock.now()
        with transaction.atomic():
            job = Job.objects.create(
                job_type=job_type,
                parameters=parameters,
                status=JobStatus.QUEUED,
                max_attempts=max_attempts or executor.retry_manager.max_attempts,
                submitted_by=clip(submitted_by, 150),
                message="queued",
                created_at=now,
                updated_at=now,
                queued_at=now,
            )
            self.monitoring.record_event_sync(
                job.id,
                EventType.QUEUED,
                status=JobStatus.QUEUED,
                message="submitted" + (f" by {submitted_by}" if submitted_by else ""),
                details={"job_type": job_type, "max_attempts": job.max_attempts, "attempt": 1},
                measure_memory=False,
                timestamp=now,
            )
            if idempotency is not None:
                remember_key(**idempotency, job=job, now=now)
            self._enqueue_on_commit(job.id, 1, job_type)
        job.replayed = False
        return job

    def _enqueue_on_commit(self, job_id, attempt: int, job_type: str, broker: Broker | None = None) -> None:
        # After commit: a worker must never pick up a job whose row it cannot see yet.
        transaction.on_commit(partial(self._enqueue, job_id, attempt, job_type, broker))

    def _enqueue(self, job_id, attempt: int, job_type: str, broker: Broker | None, *, urgent: bool = False) -> None:
        try:
            timeout = timeout_for(job_type)
            enqueue_attempt(job_id, attempt, job_type=job_type, timeout=timeout, broker=broker, urgent=urgent)
        except Exception:
            # The row stays queued; requeue_lost_jobs hands it to django-q2 again.
            logger.exception("could not enqueue job %s attempt %s; the sweep will enqueue it again", job_id, attempt)

    # --- running (inside a django-q2 worker) -----------------------------------------

    def execute_job_sync(self, job_id, attempt: int) -> dict:
        """Run one attempt of a job, unless it is not (or no longer) this attempt's turn."""
        self.monitoring.pending.flush()
        job = self._claim(job_id, attempt)
        if job is None:
            return {"job_id": str(job_id), "attempt": attempt, "ran": False}
        stop = StopSignal()
        ctx = JobContext(job, attempt, self.monitoring, stop)
        timed_out = None
        # The heartbeat lasts until the outcome is written, not just while the executor runs:
        # an outcome waiting out a database outage belongs to a live attempt, which the sweep
        # must not take back as abandoned once the database answers again.
        with Heartbeat(job.id, attempt, stop, settings.JOBS["HEARTBEAT_INTERVAL"]):
            try:
                try:
                    executor = self.get_job_executor(job.job_type)
                except UnknownJobType as e:
                    raise ConfigurationJobError(str(e)) from None
                try:
                    result = executor.run(job.parameters, ctx)
                finally:
                    _disarm_task_timeout()
            except JobCancelled as cancelled:
                self._record_outcome(job, attempt, ctx, cancelled=cancelled)
            except TimeoutException as timeout:
                timed_out = timeout
                error = JobTimeoutError(f"attempt ran past its {timeout_for(job.job_type)}s timeout")
                self._record_outcome(job, attempt, ctx, error=error)
            except Exception as error:
                self._record_outcome(job, attempt, ctx, error=error)
            else:
                self._record_outcome(job, attempt, ctx, result=result)
            # The outcome must land while the heartbeat still says this attempt is alive: once
            # the heartbeat stopped, a sweep would take the finished attempt back as abandoned
            # and run it again. Until the database answers this worker could not claim
            # another job anyway.
            while not self.monitoring.pending.flush_patiently(self.outcome_patience):
                logger.error("job %s attempt %s: its outcome is still waiting for the database", job.id, attempt)
        if timed_out is not None:
            # Recorded; now let django-q2 replace this worker process as it does after any
            # timeout: the interrupted executor may have left threads, locks or memory behind.
            raise timed_out
        return {"job_id": str(job_id), "attempt": attempt, "ran": True}

    def hand_back_sync(self, job_id, attempt: int) -> dict:
        """Give a task back to the broker without starting its attempt: its worker's node is
        stopping (jobs.queue.node_stopping). Enqueued again at once on the urgent lane (it had
        reached the queue's head: behind a backlog again, a drill saw it wait 10 minutes), for
        another node or this one once restarted; the lost-job sweep's wait starts again from now."""
        queued = Job.objects.filter(id=job_id, status=JobStatus.QUEUED, attempts=attempt - 1)
        job_type = queued.values_list("job_type", flat=True).first()
        handed_back = job_type is not None and queued.update(updated_at=clock.now()) == 1
        if handed_back:  # else cancelled or taken meanwhile: nothing to give back
            logger.info("job %s attempt %s handed back: this node is stopping", job_id, attempt)
            # On its timeline too: a drill saw a restart's wait there with nothing to explain it.
            self.monitoring.record_event_sync(
                job_id,
                EventType.QUEUED,
                status=JobStatus.QUEUED,
                message=f"attempt {attempt} handed back by {worker_id()}: its node is stopping; queued again",
                details={"attempt": attempt, "handed_back_by": worker_id()},
                measure_memory=False,
            )
            self._enqueue(job_id, attempt, job_type, None, urgent=True)
        return {"job_id": str(job_id), "attempt": attempt, "ran": False, "handed_back": handed_back}

    def _claim(self, job_id, attempt: int) -> Job | None:
        """Take the attempt; waits out a short database outage rather than lose it."""
        tried = []  # the start time each try wrote, had its commit gone through
        for pause in (0.5, 1, 2, 4, 8, 15, None):
            try:
                if tried and (job := self._claimed_here(job_id, attempt, tried)) is not None:
                    return job
                tried.append(clock.now())
                return self._claim_once(job_id, attempt, tried[-1])
            except DATABASE_UNAVAILABLE as e:
                reset_broken_connection()
                if pause is None:
                    raise
                logger.warning("database unavailable while claiming job %s (%s); trying again", job_id, e)
                time.sleep(pause)

    def _claimed_here(self, job_id, attempt: int, tried: list) -> Job | None:
        """The attempt, if one of this worker's tries (`tried`: the start times they wrote) committed
        although the connection broke before its answer came back. Its next try is refused (the
        attempt is running), and without this the attempt waited "running" for the sweep to fail it
        as a lost worker, never having run: on its last attempt, the job failed for good. Its start
        event and history row committed with it. The start time tells this process's claim from
        another's: host:pid may repeat across containers."""
        return Job.objects.filter(
            id=job_id, status=JobStatus.RUNNING, attempts=attempt, worker=worker_id(), attempt_started_at__in=tried
        ).first()

    def _claim_once(self, job_id, attempt: int, now) -> Job | None:
        with transaction.atomic():
            # A paused job type's jobs stay queued: the pause is checked in the claim itself, so
            # no attempt starts once it is committed, whichever worker holds the task.
            claimable = Job.objects.filter(id=job_id, status=JobStatus.QUEUED, attempts=attempt - 1).exclude(
                models.Exists(JobTypePause.objects.filter(job_type=models.OuterRef("job_type")))
            )
            claimed = claimable.update(
                status=JobStatus.RUNNING,
                attempts=attempt,
                started_at=Coalesce("started_at", models.Value(now, output_field=models.DateTimeField())),
                attempt_started_at=now,
                heartbeat_at=DbNow(),  # the database's clock judges heartbeats (heartbeats_stale_before)
                updated_at=now,
                worker=worker_id(),
                progress=0,
                next_attempt_at=None,
                message=f"attempt {attempt} running",
            )
            if not claimed:
                if JobTypePause.objects.filter(job_type__in=Job.objects.filter(id=job_id).values("job_type")).exists():
                    # Its task is spent; resume_job_type_sync enqueues the job again.
                    logger.info("job %s attempt %s held: its job type is paused", job_id, attempt)
                else:
                    logger.info("job %s attempt %s not run: duplicate delivery, cancelled or taken", job_id, attempt)
                return None
            job = Job.objects.get(id=job_id)
            JobRetryHistory.objects.create(
                job=job,
                attempt_number=attempt,
                started_at=now,
                status=RetryStatus.RUNNING,
                retry_delay_seconds=round(job.retry_delay) if attempt > 1 and job.retry_delay is not None else None,
            )
            self.monitoring.start_job_monitoring_sync(
                job.id, job.job_type, job.parameters, attempt=attempt, worker=job.worker
            )
        return job

    def _record_outcome(self, job: Job, attempt: int, ctx: JobContext, *, result=None, error=None, cancelled=None):
        # The last progress report the throttle held back belongs before the outcome.
        self.monitoring.flush_progress_sync(job.id)
        now = clock.now()
        if cancelled is not None:
            self._finish_cancelled(job, attempt, now=now, reason=str(cancelled), execution_time_ms=ctx.elapsed_ms)
        elif error is not None:
            self._finish_failed(job, attempt, error, now=now, execution_time_ms=ctx.elapsed_ms)
        else:
            self._finish_completed(job, attempt, result, now=now, execution_time_ms=ctx.elapsed_ms)

    # --- outcomes: each a conditional transition + history + event, in one transaction -

    def _transition(self, job_id, attempt: int, *, now, expected_heartbeat=None, **fields) -> bool:
        """Move a running attempt to its outcome, if it is still the one running."""
        rows = Job.objects.filter(id=job_id, status=JobStatus.RUNNING, attempts=attempt)
        if expected_heartbeat is not None:
            rows = rows.filter(heartbeat_at=expected_heartbeat)
        if rows.update(updated_at=now, **fields):
            return True
        logger.warning("outcome of job %s attempt %s ignored: that attempt is no longer running", job_id, attempt)
        return False

    def _finish_completed(self, job: Job, attempt: int, result, *, now, execution_time_ms: int) -> None:
        stored_result = to_json_value(result)

        def write():
            with transaction.atomic():
                if not self._transition(
                    job.id,
                    attempt,
                    now=now,
                    status=JobStatus.COMPLETED,
                    progress=100,
                    result=stored_result,
                    finished_at=now,
                    message="completed",
                ):
                    return
                JobRetryHistory.objects.filter(job_id=job.id, attempt_number=attempt).update(
                    status=RetryStatus.SUCCESS, completed_at=now
                )
                self.monitoring.complete_job_monitoring_sync(
                    job.id, stored_result, attempt=attempt, execution_time_ms=execution_time_ms, timestamp=now
                )
                self._announce_finished(job.id)

        self.monitoring.pending.run(write, f"job {job.id} attempt {attempt} completed")

    def _finish_failed(
        self,
        job: Job,
        attempt: int,
        error: BaseException,
        *,
        now,
        execution_time_ms: int | None,
        expected_heartbeat=None,
        measure_memory: bool = True,
    ) -> None:
        action = self.error_handler.handle_job_error_sync(job, error, {"attempt": attempt})
        details = error_details(error, action.error_type, retryable=action.retry)
        summary = clip(f"{details['type']}: {details['message']}")
        fields = {
            "last_error": to_json_value({k: v for k, v in details.items() if k != "traceback"} | {"hint": action.hint}),
            "error_class": action.error_type,
            "message": summary,
        }
        if action.retry:
            fields.update(
                status=JobStatus.RETRYING, next_attempt_at=action.next_attempt_at(now), retry_delay=action.delay
            )
        else:
            fields.update(status=JobStatus.FAILED, finished_at=now)
        context = {
            "status": fields["status"],
            "attempt": attempt,
            "max_attempts": job.max_attempts,
            "error_class": action.error_type,
            "retryable": action.retry,
            "hint": action.hint,
            "next_attempt_at": fields.get("next_attempt_at"),
            "retry_delay_s": round(action.delay, 3) if action.retry else None,
            "execution_time_ms": execution_time_ms,
            "error_details": details,
            "measure_memory": measure_memory,
        }

        def write():
            with transaction.atomic():
                outcome, event_context = fields, context
                # A cancel asked for while this attempt ran ends the job here: no retry.
                cancelled = action.retry and self._cancel_requested(job.id, attempt)
                if cancelled:
                    outcome = {
                        **fields,
                        "status": JobStatus.CANCELLED,
                        "finished_at": now,
                        "next_attempt_at": None,
                        "retry_delay": None,
                        "message": clip(
                            f"cancelled: attempt {attempt} failed after a cancel was requested ({summary})"
                        ),
                    }
                    event_context = {**context, "status": JobStatus.CANCELLED, "next_attempt_at": None}
                if not self._transition(job.id, attempt, now=now, expected_heartbeat=expected_heartbeat, **outcome):
                    return
                JobRetryHistory.objects.filter(job_id=job.id, attempt_number=attempt).update(
                    status=RetryStatus.FAILED, completed_at=now, error_message=summary
                )
                self.monitoring.record_job_error_sync(job.id, error, event_context, timestamp=now)
                if cancelled:
                    self.monitoring.record_event_sync(
                        job.id,
                        EventType.CANCELLED,
                        status=JobStatus.CANCELLED,
                        message=f"not retried: a cancel was requested while attempt {attempt} ran",
                        details={"attempt": attempt},
                        measure_memory=False,
                        timestamp=now,
                    )
                if not action.retry or cancelled:
                    self._announce_finished(job.id)

        self.monitoring.pending.run(write, f"job {job.id} attempt {attempt} failed: {summary[:200]}")

    def _cancel_requested(self, job_id, attempt: int) -> bool:
        """Whether a cancel is pending on this running attempt; locks the job's row until the
        transaction ends, so a cancel cannot slip in between this answer and the outcome."""
        running = Job.objects.select_for_update().filter(id=job_id, status=JobStatus.RUNNING, attempts=attempt)
        return running.values_list("cancel_requested_at", flat=True).first() is not None

    def _finish_cancelled(
        self, job: Job, attempt: int, *, now, reason: str, execution_time_ms: int | None, expected_heartbeat=None
    ) -> None:
        def write():
            with transaction.atomic():
                if not self._transition(
                    job.id,
                    attempt,
                    now=now,
                    expected_heartbeat=expected_heartbeat,
                    status=JobStatus.CANCELLED,
                    finished_at=now,
                    message=clip(f"cancelled: {reason}"),
                ):
                    return
                JobRetryHistory.objects.filter(job_id=job.id, attempt_number=attempt).update(
                    status=RetryStatus.CANCELLED, completed_at=now, error_message=clip(reason)
                )
                self.monitoring.record_event_sync(
                    job.id,
                    EventType.CANCELLED,
                    status=JobStatus.CANCELLED,
                    message=f"attempt {attempt} stopped: {reason}",
                    details={"attempt": attempt},
                    execution_time_ms=execution_time_ms,
                    timestamp=now,
                )
                self._announce_finished(job.id)

        self.monitoring.pending.run(write, f"job {job.id} attempt {attempt} cancelled")

    def _announce_finished(self, job_id) -> None:
        """Send job_finished inside the outcome's transaction: what receivers write (a failed
        job's alert) commits with the outcome or not at all, so no blip or crash between the
        two can lose it. A receiver's error rolls back to a savepoint and is logged; the
        outcome stands. An unreachable database is raised, so the whole outcome, receivers
        included, waits in memory and is written again (monitoring/pending.py)."""
        job = Job.objects.get(id=job_id)
        try:
            with transaction.atomic():
                job_finished.send(sender=Job, job=job)
        except DATABASE_UNAVAILABLE:
            raise
        except Exception as e:
            if transaction.get_connection().needs_rollback:
                # Undoing the receiver's writes failed as well (the connection broke): the outcome
                # cannot commit now; keep it, receivers included, for later as in an outage.
                raise OperationalError(f"could not undo a failed job_finished receiver for job {job_id}") from e
            logger.exception("a job_finished receiver failed for job %s; its writes were undone", job_id)

    # --- operator actions ------------------------------------------------------------

    def cancel_job_sync(self, job_id, *, by: str = "") -> bool:
        """Cancel a job: a queued or waiting one never runs again; a running one stops at its
        next progress report or cancellation check. Raises JobStateConflict if it finished."""
        who = f" by {by}" if by else ""
        for _ in range(3):  # the job may change state under us; look again
            job = self._get(job_id)
            now = clock.now()
            if job.status in (JobStatus.QUEUED, JobStatus.RETRYING):
                with transaction.atomic():
                    if Job.objects.filter(id=job.id, status=job.status, attempts=job.attempts).update(
                        status=JobStatus.CANCELLED,
                        finished_at=now,
                        updated_at=now,
                        cancel_requested_at=now,
                        next_attempt_at=None,
                        message=f"cancelled{who}",
                    ):
                        self.monitoring.record_event_sync(
                            job.id,
                            EventType.CANCELLED,
                            status=JobStatus.CANCELLED,
                            message=f"cancelled{who} before attempt {job.attempts + 1} started",
                            details={"attempt": job.attempts + 1, "by": by},
                            measure_memory=False,
                            timestamp=now,
                        )
                        self._announce_finished(job.id)
                        return True
            elif job.status == JobStatus.RUNNING:
                if job.cancel_requested_at is not None:
                    return True
                with transaction.atomic():
                    # The job's message and updated_at stay its last report's: a stuck job stays flagged
                    # as silent, and the lists show the request beside what the job last said.
                    if Job.objects.filter(
                        id=job.id, status=JobStatus.RUNNING, attempts=job.attempts, cancel_requested_at__isnull=True
                    ).update(cancel_requested_at=now):
                        self.monitoring.record_event_sync(
                            job.id,
                            EventType.CANCEL_REQUESTED,
                            status=JobStatus.RUNNING,
                            progress=job.progress,
                            message=f"cancel requested{who}",
                            details={"attempt": job.attempts, "by": by},
                            measure_memory=False,
                            timestamp=now,
                        )
                        return True
            else:
                raise JobStateConflict(
                    f"job {job.id} is {job.status}: only queued, running or retrying jobs can be cancelled",
                    status=job.status,
                )
        raise JobStateConflict(f"job {job_id} kept changing state; try again")

    def retry_job_sync(self, job_id, attempt: int | None = None, *, by: str = "") -> bool:
        """Run a failed, cancelled or waiting job again now, with a fresh retry budget.

        `attempt`, when given, must be the next attempt number (guards against double clicks).
        """
        return self._retry(self._get(job_id), attempt, by=by)

    def _retry(self, job: Job, attempt: int | None, *, by: str) -> bool:
        """retry_job_sync of `job` as it was read: refused (JobStateConflict) if its row changed
        since. A retried job can be back in the same status and attempts before its attempt starts
        (retried, then cancelled): its updated_at, written by every change, tells it apart."""
        if job.status not in RETRYABLE_STATUSES:
            raise JobStateConflict(
                f"job {job.id} is {job.status}: only failed, cancelled or retrying jobs can be retried",
                status=job.status,
            )
        next_attempt = job.attempts + 1
        if attempt is not None and attempt != next_attempt:
            raise AttemptNotNext(job.id, job.attempts, attempt, status=job.status)
        now = clock.now()
        who = f" by {by}" if by else ""
        with transaction.atomic():
            unchanged = Job.objects.filter(
                id=job.id, status=job.status, attempts=job.attempts, updated_at=job.updated_at
            )
            if not unchanged.update(
                status=JobStatus.QUEUED,
                updated_at=now,
                queued_at=now,
                progress=0,  # of the attempt to come, not the last one
                finished_at=None,
                next_attempt_at=None,
                retry_delay=None,
                cancel_requested_at=None,
                max_attempts=max(job.max_attempts, job.attempts + retry_manager_for(job.job_type).max_attempts),
                message=f"retry requested{who}",
            ):
                # Lost to another request (a second click, another operator): say what it is now,
                # not "try again", which a drill found only led to "is queued".
                now_status = Job.objects.filter(id=job.id).values_list("status", flat=True).first()
                raise JobStateConflict(
                    f"job {job.id} changed state meanwhile, it is {now_status} now (retried by another request?)",
                    status=now_status,
                )
            self.monitoring.record_event_sync(
                job.id,
                EventType.RETRY,
                status=JobStatus.QUEUED,
                message=f"retry requested{who}: attempt {next_attempt} queued",
                details={"attempt": next_attempt, "manual": True, "by": by},
                measure_memory=False,
                timestamp=now,
            )
            self._enqueue_on_commit(job.id, next_attempt, job.job_type)
        return True

    def retry_jobs_sync(self, jobs: list[Job], *, by: str = "") -> tuple[int, int]:
        """retry_job_sync for each of `jobs` as they were read, at their next attempt: one retried
        or changed since (by another operator, a worker) is left as it is, even when it is back in
        the status it was listed in (retried, then cancelled: the cancel stands). Each in its own
        transaction. (retried, left)."""
        retried = 0
        for job in jobs:
            try:
                self._retry(job, job.attempts + 1, by=by)
                retried += 1
            except (JobNotFound, JobStateConflict):
                pass
        return retried, len(jobs) - retried

    def pause_job_type_sync(self, job_type: str, *, by: str = "", reason: str = "") -> bool:
        """Stop starting jobs of `job_type` (a service they call is down, a bad deploy): its queued
        jobs wait, retries coming due wait, new ones are accepted and wait; attempts already
        running finish. False, changing nothing, when it was already paused.

        Raises UnknownJobType for a name neither registered nor ever submitted (a typo would pause
        nothing while the operator thinks it paused); a type no longer registered whose jobs are
        still here may be paused."""
        require_known_job_type(job_type)
        defaults = {"paused_by": clip(by, 150), "reason": clip(reason, MAX_PAUSE_REASON_CHARS)}
        for _ in range(3):
            try:
                _, created = JobTypePause.objects.get_or_create(job_type=job_type, defaults=defaults)
                break
            except IntegrityError:
                # Another pause inserted the row first and a resume deleted it before get_or_create
                # could read it back (a drill's 500): look again, and pause it if it is not.
                continue
        else:
            raise JobStateConflict(f"{job_type} was paused and resumed meanwhile, three times; try again")
        if created:
            logger.warning("job type %s paused%s", job_type, f" by {by}" if by else "")
        return created

    def resume_job_type_sync(self, job_type: str, *, by: str = "") -> int | None:
        """Start jobs of `job_type` again: each job the pause held is enqueued again at once (a
        QUEUED event says so). None when it was not paused; else how many were enqueued."""
        now = clock.now()
        who = f" by {by}" if by else ""
        # The pause is lifted (committed) before the held jobs are read: a claim refused by it saw
        # its job queued, so that job is read below. Read inside the same transaction, a retry
        # queued and refused just before the commit would wait for the lost-job sweep. A job
        # queued meanwhile and not refused is enqueued twice: its claim refuses the second task.
        if not JobTypePause.objects.filter(job_type=job_type).delete()[0]:
            return None  # not paused, or another operator resumed it a moment ago
        with transaction.atomic():
            held = Job.objects.filter(job_type=job_type, status=JobStatus.QUEUED)
            # Enqueued in the order they were queued: the broker hands tasks out first in, first out.
            rows = list(held.order_by("queued_at", "created_at").values_list("id", "attempts"))
            # Their wait for the lost-job sweep starts again from now (updated_at: last enqueued).
            held.update(updated_at=now)
            self.monitoring.record_events_sync(
                [
                    {
                        "job_id": job_id,
                        "event_type": EventType.QUEUED,
                        "status": JobStatus.QUEUED,
                        "message": f"attempt {attempts + 1} enqueued again: {job_type} resumed{who}",
                        "details": {"attempt": attempts + 1, "resumed": True, "by": by},
                        "timestamp": now,
                    }
                    for job_id, attempts in rows
                ]
            )
            for job_id, attempts in rows:
                self._enqueue_on_commit(job_id, attempts + 1, job_type)
        logger.warning("job type %s resumed%s: %d held jobs enqueued again", job_type, who, len(rows))
        return len(rows)

    def _get(self, job_id) -> Job:
        try:
            return Job.objects.get(id=job_id)
        except (Job.DoesNotExist, ValueError, ValidationError):
            raise JobNotFound(f"job {job_id} not found") from None

    # --- periodic work, run by every cluster's pusher (jobs/brokers.py) ------------------

    def dispatch_due_retries(self, *, now=None, limit: int = 100, broker: Broker | None = None) -> int:
        """Hand retries whose delay has passed to django-q2."""
        now = now or clock.now()
        due = Job.objects.filter(status=JobStatus.RETRYING, next_attempt_at__lte=now).order_by("next_attempt_at")
        dispatched = 0
        for job_id, job_type, attempts, due_at, delay in due.values_list(
            "id", "job_type", "attempts", "next_attempt_at", "retry_delay"
        )[:limit]:
            next_attempt = attempts + 1
            with transaction.atomic():
                if not Job.objects.filter(id=job_id, status=JobStatus.RETRYING, attempts=attempts).update(
                    status=JobStatus.QUEUED,
                    updated_at=now,
                    queued_at=now,
                    progress=0,
                    message=f"attempt {next_attempt} queued",
                ):
                    continue  # another cluster dispatched it
                failed_at = due_at - timedelta(seconds=delay or 0)
                waited = (now - failed_at).total_seconds()
                self.monitoring.record_event_sync(
                    job_id,
                    EventType.RETRY,
                    status=JobStatus.QUEUED,
                    message=f"attempt {next_attempt} queued after {waited:.1f}s (planned {delay or 0:.1f}s)",
                    details={"attempt": next_attempt, "planned_delay_s": delay, "waited_s": round(waited, 3)},
                    measure_memory=False,
                    timestamp=now,
                )
                self._enqueue_on_commit(job_id, next_attempt, job_type, broker)
            dispatched += 1
        return dispatched

    def recover_stale_jobs(self, *, now=None, limit: int = 100) -> int:
        """Take back running jobs whose worker stopped sending heartbeats (killed, lost)."""
        stale_before = heartbeats_stale_before(now)
        now = now or clock.now()
        stale = Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before).order_by("heartbeat_at")
        recovered = 0
        for job in stale[:limit]:
            # A row written by other code may lack its attempt's start: one such row must not stop the sweep.
            started = job.attempt_started_at or job.heartbeat_at
            ran_ms = int((_last_sign_of_life(job, started) - started).total_seconds() * 1000)
            timeout = timeout_for(job.job_type)
            if job.cancel_requested_at is not None:
                self._finish_cancelled(
                    job,
                    job.attempts,
                    now=now,
                    reason=f"cancel requested; worker {job.worker} stopped responding",
                    execution_time_ms=ran_ms,
                    expected_heartbeat=job.heartbeat_at,
                )
            else:
                if (now - started).total_seconds() > timeout:
                    error = JobTimeoutError(
                        f"attempt {job.attempts} ran past its {timeout}s timeout; worker {job.worker} was stopped"
                    )
                else:
                    error = WorkerLostError(
                        f"worker {job.worker} stopped sending heartbeats at {job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC; "
                        f"attempt {job.attempts} abandoned"
                    )
                self._finish_failed(
                    job,
                    job.attempts,
                    error,
                    now=now,
                    execution_time_ms=ran_ms,
                    expected_heartbeat=job.heartbeat_at,
                    measure_memory=False,
                )
            recovered += 1
        return recovered

    def requeue_lost_jobs(self, *, now=None, limit: int = 100, broker: Broker | None = None) -> int:
        """Enqueue again queued jobs whose task will not reach a worker: lost between commit and
        enqueue, taken from the broker by a node that then died, or lost with the broker's data.

        A job counts as lost once it has waited JOBS["REQUEUE_AFTER"] and its task cannot still be
        ahead in the queue: the broker's queue is empty, or a worker already runs an attempt queued
        that long after it (the broker hands tasks out in the order they came; the margin covers
        node clocks and enqueues held until a long transaction commits). Otherwise the job is most
        likely waiting its turn behind a backlog. At once, whatever the queue holds, if it was
        enqueued before the broker lost its data (Redis flushed or restarted: tasks_lost_before in
        jobs/brokers.py). A duplicate task is harmless anyway (the claim refuses it): at worst a
        task a live node prefetched runs elsewhere first.
        """
        from jobs.queue import shared_broker

        broker = broker or shared_broker()
        now = now or clock.now()
        # The ORM broker's queue is the database: it is lost only with the jobs themselves.
        lost_at = broker.tasks_lost_before(now) if hasattr(broker, "tasks_lost_before") else None
        patience = timedelta(seconds=settings.JOBS["REQUEUE_AFTER"])
        queued_before = now - patience
        why = "the broker's queue is empty"
        if broker.queue_size():
            passed = Job.objects.filter(status=JobStatus.RUNNING).aggregate(newest=models.Max("queued_at"))["newest"]
            queued_before = min(queued_before, passed - patience) if passed is not None else None
            why = "workers already run attempts queued after it"
        queued_before = max((t for t in (queued_before, lost_at) if t is not None), default=None)
        if queued_before is None:
            return 0
        # A queued job's updated_at is when it was last enqueued (queued, or by this sweep): nothing
        # else writes a queued row. So a job enqueued again waits a whole JOBS_REQUEUE_AFTER once more.
        lost = (
            Job.objects.filter(status=JobStatus.QUEUED, updated_at__lt=queued_before)
            .exclude(job_type__in=JobTypePause.objects.values("job_type"))  # held, not lost
            .order_by("updated_at")
        )
        requeued = 0
        for job_id, job_type, attempts, updated_at in lost.values_list("id", "job_type", "attempts", "updated_at")[
            :limit
        ]:
            enqueued_at, reason = now, why
            if lost_at is not None and updated_at < lost_at:
                reason = "the broker lost its queue: Redis was flushed or restarted"
                # Not before the loss, even on a node whose clock is a little behind the one that
                # noticed it: the next sweep would take the new task for lost too.
                enqueued_at = max(now, lost_at)
            with transaction.atomic():
                # queued_at stays: the job's first task may still be alive (prefetched by a busy node)
                # and run; the sweep must not read a later queue time from it than its task had.
                if not Job.objects.filter(id=job_id, status=JobStatus.QUEUED, updated_at=updated_at).update(
                    updated_at=enqueued_at
                ):
                    continue
                self.monitoring.record_event_sync(
                    job_id,
                    EventType.QUEUED,
                    status=JobStatus.QUEUED,
                    message=f"attempt {attempts + 1} enqueued again: its task was lost ({reason})",
                    details={"attempt": attempts + 1, "requeued": True},
                    measure_memory=False,
                    timestamp=now,
                )
                self._enqueue_on_commit(job_id, attempts + 1, job_type, broker)
            requeued += 1
        return requeued

    # --- the design's awaitable interface -----------------------------------------------

    async def execute_job(self, job_id, attempt: int) -> dict:
        return await sync_to_async(self.execute_job_sync)(job_id, attempt)

    async def retry_job(self, job_id, attempt: int | None = None, **kwargs) -> bool:
        return await sync_to_async(self.retry_job_sync)(job_id, attempt, **kwargs)

    async def cancel_job(self, job_id, **kwargs) -> bool:
        return await sync_to_async(self.cancel_job_sync)(job_id, **kwargs)


job_manager = EnhancedJobManager()
