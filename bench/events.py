"""Figure 2: the cost of one progress event actually written, against a raw INSERT of the same row.

Ours is the whole `update_job_progress_sync` call with the throttle off (the job row's
progress and the event). The baseline builds the same row and INSERTs it alone, prepared,
on a plain psycopg connection in autocommit. Blocks of both alternate, each on a fresh
job: hundreds of updates of one job row would bloat it and slow the later blocks.
"""

import time
import uuid

import psycopg
from django.db import connection
from django.utils import timezone

from bench.db import plain_connection
from bench.report import info, judged, median, us
from jobs.models import Job, JobStatus
from monitoring.controller import MonitoringController, memory_usage_mb

TARGET = "<= 2.0"

RAW_INSERT = """
    INSERT INTO job_execution_logs
        (id, job_id, event_type, timestamp, status, progress, message, details, error_details,
         execution_time_ms, memory_usage_mb, created_at)
    VALUES (%(id)s, %(job_id)s, 'progress', %(timestamp)s, %(status)s, %(progress)s, %(message)s,
            %(details)s::jsonb, NULL, %(execution_time_ms)s, %(memory_usage_mb)s, %(created_at)s)
"""


JOB_TYPE = "bench.events"


def running_job() -> Job:
    now = timezone.now()
    return Job.objects.create(
        job_type=JOB_TYPE, status=JobStatus.RUNNING, attempts=1, started_at=now, attempt_started_at=now
    )


def raw_block(conn: psycopg.Connection, writes: int) -> list[float]:
    job_id = running_job().id
    times = []
    for step in range(writes):
        started = time.perf_counter()
        now = timezone.now()
        params = {
            "id": uuid.uuid4(),
            "job_id": job_id,
            "timestamp": now,
            "status": JobStatus.RUNNING,
            "progress": step % 101,
            "message": f"step {step}",
            "details": None,
            "execution_time_ms": step,
            "memory_usage_mb": memory_usage_mb(),
            "created_at": now,
        }
        with psycopg.Cursor(conn) as cursor:
            cursor.execute(RAW_INSERT, params, prepare=True)
        times.append(time.perf_counter() - started)
    return times


def ours_block(controller: MonitoringController, writes: int) -> list[float]:
    job_id = running_job().id
    times = []
    for step in range(writes):
        started = time.perf_counter()
        written = controller.update_job_progress_sync(
            job_id, step % 101, message=f"step {step}", attempt=1, execution_time_ms=step
        )
        times.append(time.perf_counter() - started)
        assert written, "the job stopped being running"
    return times


def run(*, blocks: int = 12, writes: int = 100) -> dict:
    controller = MonitoringController(progress_interval=0)  # every report is written
    connection.ensure_connection()
    configured_threshold = connection.connection.prepare_threshold
    samples = {"raw": [], "ours": [], "ours_unprepared": []}
    with plain_connection(autocommit=True) as raw:
        raw_block(raw, 20), ours_block(controller, 20)  # warm up both connections
        for block in range(blocks):
            samples["raw"] += raw_block(raw, writes)
            samples["ours"] += ours_block(controller, writes)
            # What the write cost before the fix: Django's default, prepared statements off
            # (psycopg then ignores prepare=True).
            connection.connection.prepare_threshold = None
            try:
                samples["ours_unprepared"] += ours_block(controller, writes)
            finally:
                connection.connection.prepare_threshold = configured_threshold
    Job.objects.filter(job_type=JOB_TYPE).delete()  # the other figures count jobs; leave none behind
    return {
        "blocks": blocks,
        "writes": writes,
        "prepare_threshold": configured_threshold,
        "median_s": {name: median(values) for name, values in samples.items()},
    }


def rows(result: dict) -> list:
    raw, ours = result["median_s"]["raw"], result["median_s"]["ours"]
    unprepared = result["median_s"]["ours_unprepared"]
    note = (
        f"median of {result['blocks']} x {result['writes']} writes each, blocks interleaved, a fresh job per block"
    )
    return [
        judged("2. progress event written vs raw INSERT", us(raw), us(ours), ours / raw, TARGET, note),
        info(
            "   same, statement not prepared (before)",
            us(raw),
            us(unprepared),
            unprepared / raw,
            "Django's default prepare_threshold=None made psycopg ignore prepare=True",
        ),
    ]
