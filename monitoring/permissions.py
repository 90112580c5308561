"""Who may do what, in one place: the API, the dashboard and admin all check these."""

VIEW_JOBS = "jobs.view_job"
SUBMIT_JOBS = "jobs.add_job"
CONTROL_JOBS = "jobs.change_job"  # cancel, retry, pause and resume
VIEW_ALERTS = "alerts.view_alerthistory"
RESOLVE_ALERTS = "alerts.change_alerthistory"  # acknowledge and resolve
VIEW_HEALTH = "monitoring.view_systemhealthmetric"
VIEW_METRICS = "monitoring.view_jobexecutionlog"

# Acting on jobs or alerts answers with what was acted on (the job's page, its summary, the
# pauses): a user who may act but not look would be shown what they may not see, or act blind.
# Submitting stands alone: a robot may submit jobs and only learn its own job's summary.
PRESUPPOSES = {CONTROL_JOBS: VIEW_JOBS, RESOLVE_ALERTS: VIEW_ALERTS}


def missing_permission(user, permission: str | None) -> str | None:
    """The permission `user` lacks for an operation needing `permission` (itself, or the one it
    presupposes), or None when the user may."""
    for needed in (permission, PRESUPPOSES.get(permission)):
        if needed and not user.has_perm(needed):
            return needed
    return None
