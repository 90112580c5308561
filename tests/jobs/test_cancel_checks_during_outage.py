"""ctx.check_cancelled() during a database blip must not fail the job (progress reports don't)."""

import pytest
from django.db import OperationalError, connection

import tests.jobs.executors  # noqa: F401
from jobs.manager import EnhancedJobManager, job_manager
from jobs.models import JobStatus
from jobs.registry import job_executor
from monitoring.controller import MonitoringController

pytestmark = pytest.mark.django_db


class Outage:
    """Every statement on this thread's connection fails as if the server went away."""

    def __init__(self):
        self.active = False
        self.hits = 0

    def __call__(self, execute, sql, params, many, context):
        if self.active:
            self.hits += 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)


OUTAGE = Outage()


@job_executor("test.loop_with_cancel_checks")
def loop_with_cancel_checks(params, ctx):
    for i in range(3):
        ctx.progress(10 * (i + 1), f"step {i}")
        OUTAGE.active = i == 1  # the database drops out during the second check only
        try:
            ctx.check_cancelled()  # the documented way for long loops to notice a cancel
        finally:
            OUTAGE.active = False
    return {"steps": 3}


def test_check_cancelled_during_a_database_blip_does_not_fail_the_job(settings):
    settings.JOBS = {**settings.JOBS, "PROGRESS_INTERVAL": 0, "HEARTBEAT_INTERVAL": 60}
    manager = EnhancedJobManager(monitoring=MonitoringController(progress_interval=0))
    job = job_manager.submit_job("test.loop_with_cancel_checks", {})
    with connection.execute_wrapper(OUTAGE):
        manager.execute_job_sync(job.id, 1)
    job.refresh_from_db()
    assert OUTAGE.hits > 0
    # A progress report in a blip is kept and the job goes on; a cancellation check must not fail it either.
    assert (job.status, job.error_class, job.message) == (JobStatus.COMPLETED, "", "completed")
