"""The reads behind the dashboard's lists and overview."""

from datetime import UTC, datetime, timedelta

import pytest

from jobs.models import JobStatus
from monitoring import selectors
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def ago(**kwargs):
    return NOW - timedelta(**kwargs)


def test_active_jobs_come_running_first_then_retrying_then_queued_newest_first_within_each():
    old_queued = JobFactory(created_at=ago(minutes=9))
    new_queued = JobFactory(created_at=ago(minutes=1))
    retrying = JobFactory(status=JobStatus.RETRYING, attempts=1, created_at=ago(minutes=5))
    old_running = JobFactory(running=True, created_at=ago(minutes=8))
    new_running = JobFactory(running=True, created_at=ago(minutes=2))
    JobFactory(completed=True, finished_at=ago(minutes=1))

    listed = list(selectors.active_job_list())

    assert listed == [new_running, old_running, retrying, new_queued, old_queued]


def test_active_order_does_not_move_when_a_job_reports_progress():
    first = JobFactory(running=True, created_at=ago(minutes=2))
    second = JobFactory(running=True, created_at=ago(minutes=1))
    first.updated_at = NOW  # a progress report
    first.save()
    assert list(selectors.active_job_list()) == [second, first]


def test_finished_jobs_are_those_finished_in_the_window_newest_first():
    recent_fail = JobFactory(failed=True, finished_at=ago(minutes=5))
    recent_ok = JobFactory(completed=True, finished_at=ago(minutes=30))
    cancelled = JobFactory(status=JobStatus.CANCELLED, finished_at=ago(minutes=10))
    JobFactory(completed=True, finished_at=ago(days=2))
    JobFactory(running=True)

    assert selectors.finished_jobs(since=ago(hours=1)) == ([recent_fail, cancelled, recent_ok], False)
    assert selectors.finished_jobs(since=ago(hours=1), status="failed") == ([recent_fail], False)


def test_finished_jobs_come_a_page_at_a_time_merged_across_statuses():
    statuses = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
    jobs = [JobFactory(status=statuses[i % 3], finished_at=ago(minutes=i)) for i in range(7)]
    first, more = selectors.finished_jobs(since=ago(hours=1), limit=3)
    assert (first, more) == (jobs[:3], True)
    second, more = selectors.finished_jobs(since=ago(hours=1), offset=3, limit=3)
    assert (second, more) == (jobs[3:6], True)
    assert selectors.finished_jobs(since=ago(hours=1), offset=6, limit=3) == (jobs[6:], False)


def test_active_job_counts_by_status_and_type():
    JobFactory.create_batch(2, job_type="ai_matching", running=True)
    JobFactory(job_type="ai_matching")
    JobFactory(job_type="demo.sleep", status=JobStatus.RETRYING)
    JobFactory(job_type="demo.sleep", completed=True)

    counts = selectors.active_job_counts()

    assert counts["total"] == 4
    assert counts["by_status"] == {"queued": 1, "running": 2, "retrying": 1}
    assert counts["by_type"] == [
        {"job_type": "ai_matching", "total": 3, "queued": 1, "running": 2, "retrying": 0},
        {"job_type": "demo.sleep", "total": 1, "queued": 0, "running": 0, "retrying": 1},
    ]


def test_recent_failures_are_the_jobs_that_failed_for_good_in_the_window():
    newest = JobFactory(failed=True, finished_at=ago(minutes=1))
    older = JobFactory(failed=True, finished_at=ago(minutes=50))
    JobFactory(failed=True, finished_at=ago(hours=2))
    JobFactory(status=JobStatus.RETRYING)  # failed an attempt, not for good

    failures, total = selectors.recent_failures(since=ago(hours=1), limit=1)

    assert (failures, total) == ([newest], 2)
    assert older not in failures


def test_a_search_can_point_at_a_job_outside_the_list():
    job = JobFactory(completed=True)
    assert selectors.job_by_exact_id(str(job.id)) == {"id": job.id, "status": "completed"}
    assert selectors.job_by_exact_id(str(job.id)[:8]) is None
