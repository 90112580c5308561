from django.urls import path

from monitoring.views import alerts, errors, health, job_detail, jobs, overview, performance

app_name = "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("jobs/", jobs.job_list, name="jobs"),
    path("jobs/retry/", jobs.retry_jobs, name="retry_jobs"),
    path("jobs/submit/", jobs.submit_job, name="submit_job"),
    path("jobs/pause/", jobs.pause_job_type, name="pause_job_type"),
    path("jobs/resume/", jobs.resume_job_type, name="resume_job_type"),
    path("jobs/<uuid:job_id>/", job_detail.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/events/", job_detail.job_events, name="job_events"),
    path("jobs/<uuid:job_id>/cancel/", job_detail.cancel_job, name="cancel_job"),
    path("jobs/<uuid:job_id>/retry/", job_detail.retry_job, name="retry_job"),
    path("performance/", performance.performance, name="performance"),
    path("errors/", errors.errors, name="errors"),
    path("health/", health.health, name="health"),
    path("alerts/", alerts.alerts, name="alerts"),
    path("alerts/<uuid:alert_id>/", alerts.alert_detail, name="alert_detail"),
    path("alerts/<uuid:alert_id>/resolve/", alerts.resolve_alert, name="resolve_alert"),
    path("alerts/<uuid:alert_id>/acknowledge/", alerts.acknowledge_alert, name="acknowledge_alert"),
]
