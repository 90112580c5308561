"""Who may do what, in one place: the API, the dashboard and admin all check these."""

VIEW_JOBS = "jobs.view_job"
SUBMIT_JOBS = "jobs.add_job"
CONTROL_JOBS = "jobs.change_job"  # cancel and retry
VIEW_ALERTS = "alerts.view_alerthistory"
RESOLVE_ALERTS = "alerts.change_alerthistory"
VIEW_HEALTH = "monitoring.view_systemhealthmetric"
VIEW_METRICS = "monitoring.view_jobexecutionlog"
