import pytest

HTMX = {"HX-Request": "true"}


def htmx(target: str) -> dict:
    """Headers of an htmx request whose target element has this id."""
    return {**HTMX, "HX-Target": target}


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def big_history(db):
    """Hundreds of jobs in every state and thousands of log rows: pages must not care.

    Returns the job that carries the 3,000 log rows and 10 attempts.
    """
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import FINISHED_STATUSES, Job, JobRetryHistory, JobStatus
    from monitoring.models import JobExecutionLog

    now = timezone.now()
    statuses = [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING, JobStatus.COMPLETED, JobStatus.FAILED]
    jobs = [
        Job(
            job_type=("demo.sleep", "demo.fail", "ai_matching")[i % 3],
            status=statuses[i % 5],
            attempts=1,
            progress=i % 100,
            message=f"step {i}",
            created_at=now - timedelta(minutes=i),
            updated_at=now - timedelta(seconds=i),
            finished_at=now - timedelta(minutes=i) if statuses[i % 5] in FINISHED_STATUSES else None,
            error_class="transient" if statuses[i % 5] == JobStatus.FAILED else "",
        )
        for i in range(400)
    ]
    Job.objects.bulk_create(jobs)
    busy = jobs[1]  # running
    JobExecutionLog.objects.bulk_create(
        JobExecutionLog(
            job=busy,
            event_type="progress",
            status="running",
            progress=i % 100,
            message=f"report {i}",
            details={"attempt": 1 + i // 300},
            timestamp=now - timedelta(seconds=3000 - i),
            execution_time_ms=i,
        )
        for i in range(3000)
    )
    JobRetryHistory.objects.bulk_create(
        JobRetryHistory(job=busy, attempt_number=n, status="failed", started_at=now - timedelta(minutes=20 - n))
        for n in range(1, 11)
    )
    return busy


@pytest.fixture
def outcome_history(db):
    """3,000 attempts' outcomes of 3,000 jobs over the last day, with errors of four kinds:
    what the metrics pages read. They must not care how many there are."""
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import Job, JobRetryHistory
    from monitoring.models import JobExecutionLog

    now = timezone.now()
    kinds = [
        ("httpx.ConnectTimeout", "transient"),
        ("ValueError", "data"),
        ("KeyError", "configuration"),
        ("OSError", "system"),
    ]
    jobs = [Job(job_type=("demo.sleep", "demo.fail", "ai_matching")[i % 3], status="completed") for i in range(3000)]
    Job.objects.bulk_create(jobs)
    logs, attempts = [], []
    for i, job in enumerate(jobs):
        when = now - timedelta(seconds=i * 28)
        attempts.append(JobRetryHistory(job=job, attempt_number=1, status="success", started_at=when))
        if i % 10 == 0:
            kind, error_class = kinds[i % 4]
            fingerprint = f"fp{i // 10 % 40}"  # 40 groups
            details = {"type": kind, "message": f"boom {i}", "error_class": error_class, "fingerprint": fingerprint}
            logs.append(
                JobExecutionLog(job=job, event_type="error", status="failed", timestamp=when, error_details=details)
            )
        else:
            done = {"event_type": "completed", "status": "completed", "execution_time_ms": i}
            logs.append(JobExecutionLog(job=job, timestamp=when, **done))
    JobRetryHistory.objects.bulk_create(attempts)
    JobExecutionLog.objects.bulk_create(logs)
    return jobs
