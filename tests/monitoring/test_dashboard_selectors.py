"""The reads behind the dashboard's lists and overview."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from alerts.models import AlertOccurrence
from jobs.models import JobStatus
from monitoring import selectors
from tests.factories import AlertHistoryFactory, JobExecutionLogFactory, JobFactory

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


def failed_with(fingerprint: str, **fields):
    return JobFactory(failed=True, last_error={"type": "X", "message": "boom", "fingerprint": fingerprint}, **fields)


def test_jobs_failed_for_good_are_counted_for_several_errors_at_once_each_up_to_a_cap(
    django_assert_max_num_queries,
):
    for _ in range(3):
        failed_with("aaaa", finished_at=ago(minutes=5))
    failed_with("bbbb", finished_at=ago(minutes=5), job_type="imports")
    failed_with("bbbb", finished_at=ago(hours=2))  # before the window
    failed_with("cccc", finished_at=ago(minutes=5))  # not asked for
    failed_with("dddd", finished_at=ago(minutes=5), status=JobStatus.QUEUED)  # retried by hand since

    with django_assert_max_num_queries(1):
        counts = selectors.failed_jobs_counts(since=ago(hours=1), errors=["aaaa", "bbbb", "dddd"], cap=2)

    assert counts == {"aaaa": 2, "bbbb": 1}
    assert selectors.failed_jobs_counts(since=ago(hours=1), errors=["aaaa", "bbbb"], job_type="imports", cap=2) == {
        "bbbb": 1
    }


def test_a_search_by_id_prefix_finds_jobs_in_any_status():
    job = JobFactory(completed=True)
    found = {"id": job.id, "job_type": job.job_type, "status": "completed"}
    assert selectors.jobs_by_id_prefix(str(job.id)) == [found]
    assert selectors.jobs_by_id_prefix(str(job.id)[:8]) == [found]
    assert selectors.jobs_by_id_prefix(str(job.id).replace("-", "")[:13].upper()) == [found]


def test_an_id_prefix_is_a_range_of_the_primary_key():
    ids = ["0fffffff-ffff-4fff-bfff-ffffffffffff", "10000000-0000-4000-8000-000000000000",
           "1fffffff-ffff-4fff-bfff-ffffffffffff", "20000000-0000-4000-8000-000000000000",
           "ffffffff-ffff-4fff-bfff-ffffffffffff"]  # fmt: skip
    for each in ids:
        JobFactory(id=uuid.UUID(each))

    def found(prefix):
        return [str(job["id"]) for job in selectors.jobs_by_id_prefix(prefix)]

    assert found("1") == ids[1:3]
    assert found("1fffffff-ffff") == [ids[2]]
    assert found("ff") == [ids[4]]  # nothing after the last prefix
    assert found("2") == [ids[3]]
    assert found("3") == []
    assert selectors.id_prefix_range("0f") == (uuid.UUID(int=0x0F << 120), uuid.UUID(int=0x10 << 120))


def test_job_alerts_are_the_jobs_own_newest_first():
    job = JobFactory()
    old = AlertHistoryFactory(job=job, triggered_at=ago(hours=1))
    new = AlertHistoryFactory(job=job, triggered_at=ago(minutes=1))
    AlertHistoryFactory(job=JobFactory())
    assert selectors.job_alerts(job.id) == [new, old]


def test_job_alerts_include_those_the_jobs_failure_was_counted_into():
    first, second = JobFactory(), JobFactory()
    alert = AlertHistoryFactory(job=first)
    AlertOccurrence.objects.create(alert=alert, job=second)
    assert selectors.job_alerts(second.id) == [alert]
    assert selectors.job_alerts(second.id)[0].occurrences == 1  # with the alert's state, as alerts_for_job gives it


def error(job, minutes_ago: int, fingerprint: str):
    details = {"type": "ValueError", "message": "m", "error_class": "data", "fingerprint": fingerprint}
    when = ago(minutes=minutes_ago)
    JobExecutionLogFactory(job=job, event_type="error", status="failed", timestamp=when, error_details=details)


def test_error_groups_find_the_alerts_their_failures_raised_or_were_counted_into(django_assert_max_num_queries):
    raised_for, counted, other, too_old = JobFactory(), JobFactory(), JobFactory(), JobFactory()
    error(raised_for, 5, "aaa")
    error(counted, 10, "aaa")
    error(other, 5, "bbb")
    error(too_old, 120, "ccc")
    newer = AlertHistoryFactory(job=raised_for, triggered_at=ago(minutes=5))
    older = AlertHistoryFactory(job=JobFactory(), triggered_at=ago(minutes=30))
    AlertOccurrence.objects.create(alert=older, job=counted)
    resolved = AlertHistoryFactory(job=other, resolved_at=ago(minutes=1))
    AlertHistoryFactory(job=too_old)

    with django_assert_max_num_queries(2):
        groups = selectors.error_group_alerts(["aaa", "bbb", "ccc", "none"], since=ago(hours=1), until=NOW)

    assert groups == {  # open ones first, newest first
        "aaa": {"alerts": [newer, older], "count": 2},
        "bbb": {"alerts": [resolved], "count": 1},
    }
    assert groups["aaa"]["alerts"][1].occurrences == 1
    assert selectors.error_group_alerts([], since=ago(hours=1), until=NOW) == {}


def test_an_error_groups_first_alerts_are_loaded_and_the_others_counted(django_assert_max_num_queries):
    jobs = [JobFactory() for _ in range(6)]
    for n, job in enumerate(jobs):
        error(job, 5 + n, "aaa")
    raised = [AlertHistoryFactory(job=job, triggered_at=ago(minutes=50 - n)) for n, job in enumerate(jobs)]
    # Raised for the first job and counting it: one alert, counted once.
    AlertOccurrence.objects.bulk_create(AlertOccurrence(alert=alert, job=alert.job) for alert in raised[:3])
    resolved_newest = AlertHistoryFactory(job=jobs[0], triggered_at=ago(minutes=1), resolved_at=ago(minutes=1))
    oldest_open = AlertHistoryFactory(job=JobFactory(), triggered_at=ago(hours=3))
    AlertOccurrence.objects.create(alert=oldest_open, job=jobs[5])

    with django_assert_max_num_queries(2):
        groups = selectors.error_group_alerts(["aaa"], since=ago(hours=1), until=NOW)

    # Open ones first, newest first: the resolved one, though the newest, is not among the first 3.
    assert groups == {"aaa": {"alerts": raised[::-1][:3], "count": 8}}
    assert selectors.error_group_alerts(["aaa"], since=ago(hours=1), until=NOW, limit=10)["aaa"] == {
        "alerts": [*raised[::-1], oldest_open, resolved_newest],
        "count": 8,
    }


def test_an_alerts_jobs_are_the_latest_counted_into_it():
    alert = AlertHistoryFactory()
    jobs = [JobFactory(job_type=f"type{n}") for n in range(12)]
    AlertOccurrence.objects.bulk_create(AlertOccurrence(alert=alert, job=job) for job in jobs)
    listed = selectors.alert_jobs(alert.id)
    assert [row["job_id"] for row in listed] == [job.id for job in jobs[::-1][:10]]
    assert listed[0]["job_type"] == "type11" and listed[0]["status"] == "queued"
