"""django-q2 task functions: load by id, hand over to the job manager."""

import uuid


def run_job(job_id: str, attempt: int) -> dict:
    from jobs.manager import job_manager

    return job_manager.execute_job_sync(uuid.UUID(job_id), attempt)
