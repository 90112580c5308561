"""What an operator is told after acting on jobs: the same words on the dashboard and in admin."""

from django.contrib import messages
from django.template.defaultfilters import pluralize


def resume_outcome(job_type: str, held: int | None) -> tuple[int, str]:
    """(message level, text) for JobManager.resume_job_type_sync's answer."""
    if held is None:
        return messages.INFO, f"{job_type} was not paused (someone resumed it already?)."
    return messages.SUCCESS, f"Resumed {job_type}: {held} held job{pluralize(held)} queued again."
