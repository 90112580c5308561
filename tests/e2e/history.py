"""A believable day of history for the pages that chart it (screenshots and e2e), the same every run."""

import random
from datetime import timedelta

from jobs.models import Job, JobRetryHistory, JobStatus
from monitoring.models import EventType, JobExecutionLog, SystemHealthMetric

ERRORS = [  # (type, message, class, fingerprint, weight)
    ("httpx.ConnectTimeout", "timed out connecting to matching.internal:443", "transient", "e-timeout", 6),
    ("pydantic.ValidationError", "candidate_ids: input should be a valid list", "data", "e-validation", 2),
    ("jobs.errors.WorkerLostError", "worker vm-2:4242 stopped sending heartbeats", "system", "e-worker-lost", 1),
    ("django.core.exceptions.ImproperlyConfigured", "AI_MATCHING_API_KEY is not set", "configuration", "e-config", 1),
]
# Typical execution time (ms) and failure rate of each job type.
TYPES = {"ai_matching": (1800, 0.06), "demo.sleep": (900, 0.02), "demo.fail": (300, 0.3)}


def seed_job_history(now, *, jobs: int = 1500, hours: int = 24) -> None:
    """`jobs` finished jobs over the last `hours`; ai_matching slows down in the last two hours."""
    rng = random.Random(7)
    rows, attempts, logs = [], [], []

    def outcome(job, event_type, status, when, ms, **fields):
        log = JobExecutionLog(job=job, event_type=event_type, status=status, timestamp=when, **fields)
        log.execution_time_ms = ms
        logs.append(log)

    for _ in range(jobs):
        finished = now - timedelta(seconds=rng.uniform(30, hours * 3600))
        job_type = rng.choice(["ai_matching", "ai_matching", "demo.sleep", "demo.fail"])
        typical, failure_rate = TYPES[job_type]
        slow = 2.2 if job_type == "ai_matching" and now - finished < timedelta(hours=2) else 1.0
        ms = int(rng.lognormvariate(0, 0.4) * typical * slow)
        fails = rng.random() < failure_rate
        retried = fails and rng.random() < 0.5
        job = Job(
            job_type=job_type,
            status=JobStatus.FAILED if fails and not retried else JobStatus.COMPLETED,
            attempts=2 if retried else 1,
            progress=100,
            created_at=finished - timedelta(seconds=10),
            updated_at=finished,
            started_at=finished - timedelta(milliseconds=ms),
            finished_at=finished,
            worker=f"vm-1:{4101 + len(rows) % 4}",  # the four workers of the seeded cluster.workers
        )
        rows.append(job)
        first = JobRetryHistory(job=job, attempt_number=1, status="failed" if fails else "success")
        first.started_at = job.started_at
        attempts.append(first)
        if fails:
            kind, message, error_class, fingerprint, _ = rng.choices(ERRORS, weights=[e[4] for e in ERRORS])[0]
            details = {"type": kind, "message": message, "error_class": error_class, "fingerprint": fingerprint}
            job.message, job.error_class = f"{kind}: {message}", error_class
            job.last_error = {**details, "retryable": error_class in ("transient", "system")}
            status = JobStatus.RETRYING if retried else JobStatus.FAILED
            outcome(job, EventType.ERROR, status, finished, ms, message=job.message, error_details=details)
            if retried:
                again = finished + timedelta(seconds=2)
                attempts.append(JobRetryHistory(job=job, attempt_number=2, status="success", started_at=again))
                outcome(job, EventType.COMPLETED, JobStatus.COMPLETED, again + timedelta(milliseconds=ms), ms)
        elif rng.random() < 0.02:
            job.status = JobStatus.CANCELLED
            outcome(job, EventType.CANCELLED, JobStatus.CANCELLED, finished, ms)
        else:
            outcome(job, EventType.COMPLETED, JobStatus.COMPLETED, finished, ms)
    Job.objects.bulk_create(rows)
    JobRetryHistory.objects.bulk_create(attempts)
    JobExecutionLog.objects.bulk_create(logs)


def seed_health_history(now, *, minutes: int = 60) -> None:
    """A check every minute for the last hour; the AI service slowed down a quarter of an hour ago."""
    rng = random.Random(11)
    components = [  # (type, name, typical value, warning, critical, message)
        ("database", "database.latency_ms", 2.5, 100, 1000, "SELECT 1 in {v:.0f} ms"),
        ("database", "database.connections", 12, 80, 95, "{v:.0f} of 100 connections in use ({v:.0f} %)"),
        ("api", "ai_matching", 180, 1000, 3000, "HTTP 200 in {v:.0f} ms"),
        ("resource", "cpu.percent", 35, 85, 95, "CPU {v:.1f} % on vm-1"),
        ("resource", "memory.percent", 61, 85, 95, "memory {v:.1f} % used on vm-1 (3.1 GiB available)"),
        ("resource", "disk.percent", 72, 85, 95, "disk / {v:.1f} % full on vm-1 (28.0 GiB free)"),
        ("job_queue", "jobs.queued", 4, 100, 1000, "{v:.0f} queued, 0 waiting to retry"),
        ("job_queue", "jobs.oldest_queued_age_s", 8, 300, 900, "oldest queued job waiting {v:.0f}s"),
        ("job_queue", "jobs.stale", 0, 1, 5, "{v:.0f} running jobs without a heartbeat for 30s"),
        ("job_queue", "cluster.workers", 4, None, None, "4 workers in 1 cluster on vm-1"),
    ]
    rows = []
    for minute in range(minutes, -1, -1):
        moment = now - timedelta(minutes=minute)
        for metric_type, name, typical, warning, critical, message in components:
            value = typical if name in ("jobs.stale", "cluster.workers") else typical * rng.uniform(0.8, 1.2)
            if metric_type == "job_queue" or name == "database.connections":
                value = round(value)  # counts
            if name == "ai_matching" and minute < 15:
                value = typical * rng.uniform(6, 9) if minute > 3 else typical * rng.uniform(17, 20)
            status = "healthy"
            if warning is not None and value >= warning:
                status = "critical" if value >= critical else "warning"
            details = {"message": message.format(v=value)}
            if metric_type == "resource":
                details["host"] = "vm-1"
            metric = {"metric_type": metric_type, "metric_name": name, "metric_value": round(value, 2)}
            rows.append(SystemHealthMetric(timestamp=moment, status=status, details=details, **metric))
    SystemHealthMetric.objects.bulk_create(rows)
