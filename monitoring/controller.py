"""The design's MonitoringController: every step of every job becomes a row.

Each method named in the design is awaitable; the worker calls its `_sync` twin. The
database is the only state shared between processes: what this object keeps in memory
is the progress throttle of the attempts running in this process and the writes that
wait out a database outage (monitoring/pending.py).
"""

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from functools import partial

import psutil
import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, transaction

from jobs import clock
from jobs.errors import ErrorType, error_details
from jobs.models import Job, JobStatus
from jobs.payloads import clip, to_json_value
from monitoring import selectors
from monitoring.models import EventType, JobExecutionLog
from monitoring.pending import PendingWrites

logger = logging.getLogger(__name__)

_process: psutil.Process | None = None


def memory_usage_mb() -> int | None:
    """Resident memory of this process (the worker running the job); None when it cannot be read.
    Reading it opens /proc/self/statm: a job that used up the process's file descriptors (EMFILE)
    made the event recording its failure fail too, and its attempt stayed "running"."""
    global _process
    try:
        if _process is None or _process.pid != os.getpid():
            _process = psutil.Process()
        return _process.memory_info().rss // (1024 * 1024)
    except (OSError, psutil.Error) as e:
        logger.warning("could not read this process's memory use: %s", e)
        return None


# The job row's progress and the progress event, written together only while the attempt
# is still this worker's and nobody asked to cancel it.
PROGRESS_SQL = """
    WITH job AS (
        UPDATE jobs
        SET progress = %(progress)s, message = %(message)s, updated_at = %(timestamp)s
        WHERE id = %(job_id)s AND status = 'running' AND cancel_requested_at IS NULL
          AND (%(attempt)s::integer IS NULL OR attempts = %(attempt)s::integer)
        RETURNING id
    )
    INSERT INTO job_execution_logs
        (id, job_id, event_type, timestamp, status, progress, message, details, error_details,
         execution_time_ms, memory_usage_mb, created_at)
    SELECT %(id)s, job.id, 'progress', %(timestamp)s, %(status)s, %(progress)s, %(message)s,
           %(details)s::jsonb, NULL, %(execution_time_ms)s, %(memory_usage_mb)s, %(created_at)s
    FROM job
"""


@dataclass
class _ProgressThrottle:
    last_write: float
    pending: dict | None = field(default=None)


class MonitoringController:
    def __init__(self, progress_interval: float | None = None, clock=time.monotonic):
        self._progress_interval = progress_interval
        self._clock = clock
        self._throttles: dict[uuid.UUID, _ProgressThrottle] = {}
        self.pending = PendingWrites()

    @property
    def progress_interval(self) -> float:
        if self._progress_interval is None:
            return settings.JOBS["PROGRESS_INTERVAL"]
        return self._progress_interval

    # --- writing events ----------------------------------------------------------------

    def record_event_sync(self, job_id, event_type: str, **fields) -> JobExecutionLog:
        """Insert one event. Database errors propagate: callers decide how to stay durable."""
        event = self._event(job_id, event_type, **fields)
        event.save(force_insert=True)
        return event

    def record_events_sync(self, events: list[dict]) -> list[JobExecutionLog]:
        """Insert many events in one statement, each given as record_event_sync's arguments
        (job_id, event_type and the rest); no memory reading (these are not a worker's)."""
        return JobExecutionLog.objects.bulk_create([self._event(**event, measure_memory=False) for event in events])

    def _event(
        self,
        job_id,
        event_type: str,
        *,
        status: str,
        progress: int | None = None,
        message: str = "",
        details: dict | None = None,
        error_details: dict | None = None,
        execution_time_ms: int | None = None,
        measure_memory: bool = True,
        timestamp=None,
    ) -> JobExecutionLog:
        return JobExecutionLog(
            job_id=job_id,
            event_type=event_type,
            timestamp=timestamp or clock.now(),
            status=status,
            progress=progress,
            message=clip(message) or None,
            details=to_json_value(details),
            error_details=error_details,
            execution_time_ms=execution_time_ms,
            memory_usage_mb=memory_usage_mb() if measure_memory else None,
        )

    def start_job_monitoring_sync(self, job_id, job_type: str, parameters: dict, *, attempt: int, worker: str = ""):
        self._throttles.pop(job_id, None)
        return self.record_event_sync(
            job_id,
            EventType.STARTED,
            status=JobStatus.RUNNING,
            progress=0,
            message=f"attempt {attempt} started" + (f" on {worker}" if worker else ""),
            details={"job_type": job_type, "attempt": attempt, "worker": worker, "parameters": parameters},
        )

    def update_job_progress_sync(
        self,
        job_id,
        progress: int,
        status: str = JobStatus.RUNNING,
        details: dict | None = None,
        *,
        message: str = "",
        attempt: int | None = None,
        execution_time_ms: int | None = None,
    ) -> bool:
        """Record progress, at most once per interval (the first report and 100 % always).

        Returns False when the job should stop: an operator asked to cancel it, or it is
        no longer this worker's (taken back after missed heartbeats).
        """
        report = {
            "progress": max(0, min(100, int(progress))),
            "status": status,
            # Every event says which attempt it belongs to, as the others do.
            "details": details if attempt is None else {"attempt": attempt, **(details or {})},
            "message": message,
            "attempt": attempt,
            "execution_time_ms": execution_time_ms,
            "timestamp": clock.now(),
        }
        now = self._clock()
        throttle = self._throttles.get(job_id)
        if throttle and report["progress"] < 100 and now - throttle.last_write < self.progress_interval:
            throttle.pending = report
            return True
        self._throttles[job_id] = _ProgressThrottle(last_write=now)
        return self._write_progress(job_id, report)

    def flush_progress_sync(self, job_id) -> bool:
        """Write the last report the throttle held back, so the timeline ends where the job did."""
        throttle = self._throttles.pop(job_id, None)
        if throttle and throttle.pending:
            return self._write_progress(job_id, throttle.pending)
        return True

    def _write_progress(self, job_id, report: dict) -> bool:
        write = self._write_progress_postgres if connection.vendor == "postgresql" else self._write_progress_orm
        # Kept for later when the database is down: the job carries on.
        outcome = self.pending.run(partial(write, job_id, report), f"progress {report['progress']}% of job {job_id}")
        return outcome is not False

    def _write_progress_orm(self, job_id, report: dict) -> bool:
        with transaction.atomic():
            still_ours = Job.objects.filter(id=job_id, status=JobStatus.RUNNING, cancel_requested_at__isnull=True)
            if report["attempt"] is not None:
                still_ours = still_ours.filter(attempts=report["attempt"])
            if not still_ours.update(
                progress=report["progress"],
                message=clip(report["message"]),
                updated_at=report["timestamp"],
            ):
                return False
            self.record_event_sync(
                job_id,
                EventType.PROGRESS,
                status=report["status"],
                progress=report["progress"],
                message=report["message"],
                details=report["details"],
                execution_time_ms=report["execution_time_ms"],
                timestamp=report["timestamp"],
            )
            return True

    def _write_progress_postgres(self, job_id, report: dict) -> bool:
        """The same as _write_progress_orm in one statement: progress is the hottest write there
        is. One round trip instead of five (BEGIN, UPDATE, INSERT, COMMIT), as a prepared
        statement (config/settings.py keeps psycopg's prepare_threshold set for it; Django's own
        cursors never prepare) except behind a transaction pooler, where a prepared statement
        would not survive to the next transaction."""
        details = to_json_value(report["details"])
        params = {
            "job_id": job_id,
            "attempt": report["attempt"],
            "progress": report["progress"],
            "message": clip(report["message"]),
            "timestamp": report["timestamp"],
            "id": uuid.uuid4(),
            "status": report["status"],
            "details": None if details is None else json.dumps(details),
            "execution_time_ms": report["execution_time_ms"],
            "memory_usage_mb": memory_usage_mb(),
            "created_at": clock.now(),
        }
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(PROGRESS_SQL, params, prepare=settings.DATABASE_POOLER != "transaction")
            return cursor.rowcount == 1

    def record_job_error_sync(self, job_id, error: BaseException, context: dict, *, timestamp=None):
        """The error event of a failed attempt.

        `context` holds status and error_class, and may hold attempt, retryable, progress,
        execution_time_ms, error_details (already computed) and anything else worth keeping.
        """
        context = dict(context)
        details = context.pop("error_details", None) or error_details(
            error, ErrorType(context["error_class"]), retryable=context.get("retryable", False)
        )
        status = context.pop("status")
        progress = context.pop("progress", None)
        execution_time_ms = context.pop("execution_time_ms", None)
        measure_memory = context.pop("measure_memory", True)
        return self.record_event_sync(
            job_id,
            EventType.ERROR,
            status=status,
            progress=progress,
            message=f"{details['type']}: {details['message']}",
            details=context,
            error_details=to_json_value(details),
            execution_time_ms=execution_time_ms,
            measure_memory=measure_memory,
            timestamp=timestamp,
        )

    def complete_job_monitoring_sync(
        self, job_id, result, *, attempt: int, execution_time_ms: int | None = None, timestamp=None
    ):
        return self.record_event_sync(
            job_id,
            EventType.COMPLETED,
            status=JobStatus.COMPLETED,
            progress=100,
            message=f"attempt {attempt} completed",
            details={"attempt": attempt, "result": to_json_value(result, max_bytes=4096)},
            execution_time_ms=execution_time_ms,
            timestamp=timestamp,
        )

    # --- reading state (always from the database) ------------------------------------

    def get_job_status_sync(self, job_id) -> dict | None:
        return selectors.job_status(job_id)

    def get_active_jobs_sync(self, limit: int = 100) -> list[dict]:
        return selectors.active_jobs(limit=limit)

    # --- the design's awaitable interface ---------------------------------------------

    async def start_job_monitoring(self, job_id, job_type: str, parameters: dict, **kwargs):
        return await sync_to_async(self.start_job_monitoring_sync)(job_id, job_type, parameters, **kwargs)

    async def update_job_progress(self, job_id, progress: int, status: str = JobStatus.RUNNING, details=None, **kw):
        return await sync_to_async(self.update_job_progress_sync)(job_id, progress, status, details, **kw)

    async def record_job_error(self, job_id, error: BaseException, context: dict):
        return await sync_to_async(self.record_job_error_sync)(job_id, error, context)

    async def complete_job_monitoring(self, job_id, result, **kwargs):
        return await sync_to_async(self.complete_job_monitoring_sync)(job_id, result, **kwargs)

    async def get_job_status(self, job_id) -> dict | None:
        return await sync_to_async(self.get_job_status_sync)(job_id)

    async def get_active_jobs(self, limit: int = 100) -> list[dict]:
        return await sync_to_async(self.get_active_jobs_sync)(limit)


monitoring_controller = MonitoringController()
