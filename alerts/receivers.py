"""Where alerts hook into the job path and the health checks.

Receivers run in the worker that finished the job (or ran the checks): they only write a
few rows and queue deliveries for after commit, and never raise into their caller.
"""

import logging

from django.dispatch import receiver

from jobs.signals import job_finished
from monitoring.signals import health_checked

logger = logging.getLogger(__name__)


@receiver(job_finished, dispatch_uid="alerts.job_finished")
def raise_job_failure_alert(sender, job, **kwargs):
    from alerts.manager import alert_manager

    try:
        alert_manager.handle_job_finished(job)
    except Exception:
        logger.exception("could not raise the failure alert for job %s", getattr(job, "id", job))


@receiver(health_checked, dispatch_uid="alerts.health_checked")
def raise_health_alerts(sender, results, previous=None, **kwargs):
    from alerts.manager import alert_manager

    try:
        alert_manager.handle_health_checked(results, previous or {})
    except Exception:
        logger.exception("could not evaluate the health alert rules")
