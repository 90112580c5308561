"""What an executor gets besides its parameters: progress reporting and cancellation."""

import logging
import threading
import time

from asgiref.sync import sync_to_async
from django.db import connections

from jobs.db import DbNow
from jobs.errors import JobCancelled
from jobs.models import Job, JobStatus
from monitoring.pending import DATABASE_UNAVAILABLE, reset_broken_connection

logger = logging.getLogger(__name__)


class StopSignal:
    """Set when the running attempt must stop; `reason` says why."""

    def __init__(self):
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


class JobContext:
    def __init__(self, job: Job, attempt: int, monitoring, stop: StopSignal | None = None):
        self.job_id = job.id
        self.job_type = job.job_type
        self.attempt = attempt
        self.max_attempts = job.max_attempts
        self.stop = stop or StopSignal()
        self._monitoring = monitoring
        self._started = time.monotonic()
        self._last_cancel_check = self._started

    @property
    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000)

    @property
    def cancelled(self) -> bool:
        return self.stop.is_set()

    def progress(self, percent: int, message: str = "", details: dict | None = None) -> None:
        """Report progress (0-100). Raises JobCancelled when the job must stop."""
        self._raise_if_stopped()
        keep_going = self._monitoring.update_job_progress_sync(
            self.job_id,
            percent,
            details=details,
            message=message,
            attempt=self.attempt,
            execution_time_ms=self.elapsed_ms,
        )
        if not keep_going:
            self._learn_why_stopped()
            self._raise_if_stopped()

    async def aprogress(self, percent: int, message: str = "", details: dict | None = None) -> None:
        await sync_to_async(self.progress)(percent, message, details)

    def check_cancelled(self) -> None:
        """For long loops without progress reports: raises JobCancelled if asked to stop.

        Looks at the database at most once per progress interval.
        """
        self._raise_if_stopped()
        now = time.monotonic()
        if now - self._last_cancel_check >= self._monitoring.progress_interval:
            self._last_cancel_check = now
            self._check_stop_requested()
            self._raise_if_stopped()

    def _check_stop_requested(self) -> None:
        try:
            check_stop_requested(self.job_id, self.attempt, self.stop)
        except DATABASE_UNAVAILABLE as e:
            # Monitoring never breaks the job: as a progress report would, carry on; the
            # heartbeat thread keeps checking and stops the job once the database answers.
            reset_broken_connection()
            logger.warning("could not check job %s for a cancel, database unavailable: %s", self.job_id, e)

    def _learn_why_stopped(self) -> None:
        # The progress write found the attempt no longer running or asked to cancel; the
        # outcome's message should say which, so an operator's cancel reads as one.
        self._check_stop_requested()
        if not self.stop.is_set():
            self.stop.set("cancelled by an operator, or taken over after missed heartbeats")

    def sleep(self, seconds: float) -> None:
        """Sleep that wakes up (raising JobCancelled) as soon as the job must stop."""
        if self.stop.wait(seconds):
            self._raise_if_stopped()

    def _raise_if_stopped(self) -> None:
        if self.stop.is_set():
            raise JobCancelled(self.stop.reason)


def check_stop_requested(job_id, attempt: int, stop: StopSignal) -> None:
    row = Job.objects.filter(id=job_id).values("status", "attempts", "cancel_requested_at").first()
    if row is None or row["status"] != JobStatus.RUNNING or row["attempts"] != attempt:
        stop.set("the job is no longer running this attempt here (taken over after missed heartbeats)")
    elif row["cancel_requested_at"] is not None:
        stop.set("cancelled by an operator")


class Heartbeat:
    """While an attempt runs, a thread touches the job's heartbeat_at and watches for cancellation.

    A worker that dies stops beating; the sweep (jobs.manager.recover_stale_jobs) then
    takes the job back. The thread lives exactly as long as the attempt and closes its
    own database connection.
    """

    def __init__(self, job_id, attempt: int, stop: StopSignal, interval: float):
        self.job_id = job_id
        self.attempt = attempt
        self.stop = stop
        self.interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._done.set()
        self._thread.join(timeout=self.interval + 30)

    def _run(self) -> None:
        try:
            while not self._done.wait(self.interval):
                self.beat()
        finally:
            connections.close_all()  # this thread's connections only

    def beat(self) -> None:
        try:
            Job.objects.filter(id=self.job_id, status=JobStatus.RUNNING, attempts=self.attempt).update(
                heartbeat_at=DbNow()
            )
            check_stop_requested(self.job_id, self.attempt, self.stop)
        except DATABASE_UNAVAILABLE as e:
            reset_broken_connection()
            logger.warning("heartbeat of job %s failed, database unavailable: %s", self.job_id, e)
        except Exception:
            logger.exception("heartbeat of job %s failed", self.job_id)
