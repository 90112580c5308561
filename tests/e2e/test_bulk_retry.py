"""Retrying the failed jobs of a type from the finished list, in a real browser."""

import pytest
from django.utils import timezone

from jobs.models import Job, JobStatus
from tests.e2e.conftest import log_in
from tests.factories import JobFactory

pytestmark = [pytest.mark.e2e]


def test_an_operator_retries_the_failed_jobs_of_a_type_in_one_click(page, alice):
    now = timezone.now()
    failed = [JobFactory(job_type="ai_matching", failed=True, finished_at=now) for _ in range(3)]
    other = JobFactory(job_type="demo.fail", failed=True, finished_at=now)
    url = "/jobs/?view=finished&status=failed&job_type=ai_matching"
    log_in(page, "alice", next_url=url)
    assert page.locator("#job-rows tr").count() == 3

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("#retry-jobs")

    page.wait_for_selector("#job-list .notice >> text=Queued again 3 failed jobs at")
    assert asked == [
        (
            "Retry every failed ai_matching job that finished in the last 24h? "
            "Up to 100, the most recent first; each gets a fresh retry budget."
        )
    ]
    assert {job.status for job in Job.objects.filter(id__in=[job.id for job in failed])} == {JobStatus.QUEUED}
    assert Job.objects.get(id=other.id).status == JobStatus.FAILED
    assert page.url.endswith(url)  # still the same list, now empty of them
    assert page.locator("#retry-jobs").count() == 0
