"""Where alerts hook into the job path and the health checks.

Receivers run in the worker that finished the job (or ran the checks): they only write a
few rows and queue deliveries for after commit.
"""

import logging

from django.dispatch import receiver

from jobs.signals import job_finished
from monitoring.signals import health_checked

logger = logging.getLogger(__name__)


@receiver(job_finished, dispatch_uid="alerts.job_finished")
def raise_job_failure_alert(sender, job, **kwargs):
    # Not guarded here: it runs in the outcome's transaction, whose sender undoes and logs a
    # failure, and keeps the whole outcome for later if the database is unreachable.
    from alerts.manager import alert_manager

    alert_manager.handle_job_finished(job)


@receiver(health_checked, dispatch_uid="alerts.health_checked")
def raise_health_alerts(sender, results, previous=None, **kwargs):
    from alerts.manager import alert_manager

    try:
        alert_manager.handle_health_checked(results, previous or {})
    except Exception:
        logger.exception("could not evaluate the health alert rules")
