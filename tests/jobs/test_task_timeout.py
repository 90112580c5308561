"""django-q2's timeout is a SIGALRM that can land anywhere in the worker's main thread,
including between the executor's return and the commit of its outcome."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.exceptions import TimeoutException
from django_q.timeout import TimeoutHandler

import tests.jobs.executors  # noqa: F401
from jobs.manager import EnhancedJobManager, job_manager
from jobs.models import JobStatus
from monitoring.controller import MonitoringController

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_that_completed_as_its_timeout_fired_is_not_run_again(monkeypatch, settings):
    settings.JOBS = {**settings.JOBS, "HEARTBEAT_INTERVAL": 60}
    real = MonitoringController.complete_job_monitoring_sync

    def slow_outcome_write(self, *args, **kwargs):  # a busy database: the commit takes a moment
        time.sleep(1.5)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MonitoringController, "complete_job_monitoring_sync", slow_outcome_write)
    manager = EnhancedJobManager(monitoring=MonitoringController())
    job = job_manager.submit_job("test.echo", {"side_effect": "email sent"})
    try:
        # What django-q2's worker does around the task: SIGALRM after the task's timeout (1 s here).
        # The executor returns at once; the alarm lands while its outcome is being written.
        with TimeoutHandler(1):
            manager.execute_job_sync(job.id, 1)
    except TimeoutException:
        pass  # without the fix the alarm escapes from the outcome write
    job.refresh_from_db()
    after_alarm = (job.status, job.result)
    manager.recover_stale_jobs(now=timezone.now() + timedelta(seconds=settings.JOBS["STALE_AFTER"] + 1))
    job.refresh_from_db()
    assert after_alarm == (JobStatus.COMPLETED, {"echo": {"side_effect": "email sent"}})
    assert job.status == JobStatus.COMPLETED
