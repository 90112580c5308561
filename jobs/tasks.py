"""django-q2 task functions: load by id, hand over to the job manager."""

import uuid


def run_job(job_id: str, attempt: int) -> dict:
    from jobs.manager import job_manager
    from jobs.queue import node_stopping

    if node_stopping():  # a task this node took ahead of time: not started after the stop was asked
        return job_manager.hand_back_sync(uuid.UUID(job_id), attempt)
    return job_manager.execute_job_sync(uuid.UUID(job_id), attempt)
