import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.admin import MAX_COUNTED_ROWS
from jobs.models import JobStatus
from monitoring import admin as monitoring_admin
from monitoring.models import HealthStatus
from tests.explain import plan
from tests.factories import JobExecutionLogFactory, JobFactory, SystemHealthMetricFactory, UserFactory

pytestmark = pytest.mark.django_db

LOG_LIST = reverse("admin:monitoring_jobexecutionlog_changelist")


def staff_viewer(client, permission: str):
    """The client, logged in as a staff member who may only view what `permission` names."""
    client.force_login(UserFactory(username="viewer", is_staff=True, permissions=[permission]))
    return client


@pytest.fixture
def log_viewer(client):
    return staff_viewer(client, "monitoring.view_jobexecutionlog")


def test_the_execution_log_admin_finds_a_jobs_events_by_its_short_id(log_viewer):
    client = log_viewer
    wanted = JobExecutionLogFactory(job=JobFactory(id=uuid.UUID("63644131-0000-4000-8000-000000000001")))
    JobExecutionLogFactory(job=JobFactory(id=uuid.UUID("63644132-0000-4000-8000-000000000001")))

    response = client.get(reverse("admin:monitoring_jobexecutionlog_changelist"), {"q": "63644131"})
    assert [log.id for log in response.context["cl"].result_list] == [wanted.id]


def test_the_execution_log_list_counts_its_events_only_as_far_as_it_pages(log_viewer, monkeypatch):
    # Millions of events: admin's COUNT(*) and a DISTINCT of their statuses read every one of them
    # on each page (1.2 s at 5 million). Here the count stops at MAX_COUNTED_ROWS, and the status
    # filter lists the statuses a job has.
    monkeypatch.setattr("jobs.admin.MAX_COUNTED_ROWS", 2)
    JobExecutionLogFactory.create_batch(3)

    response = log_viewer.get(LOG_LIST)

    assert response.context["cl"].result_count == 2
    assert "2 or more job execution logs (counted no further)" in response.content.decode()
    status_filter = next(spec for spec in response.context["cl"].filter_specs if spec.title == "status")
    assert [choice["display"] for choice in status_filter.choices(response.context["cl"])][1:] == JobStatus.labels


def test_the_execution_log_list_runs_no_query_over_every_event(log_viewer, django_assert_max_num_queries):
    JobExecutionLogFactory.create_batch(3)

    with django_assert_max_num_queries(6) as captured:
        log_viewer.get(LOG_LIST, {"status": JobStatus.RUNNING})

    queries = [query["sql"] for query in captured.captured_queries]
    assert not [sql for sql in queries if "DISTINCT" in sql]
    counts = [sql for sql in queries if "COUNT(*)" in sql and "job_execution_logs" in sql]
    assert counts and all(f"LIMIT {MAX_COUNTED_ROWS}" in sql for sql in counts)


def test_a_job_id_searched_finds_its_events_not_the_messages_that_mention_it(log_viewer):
    # The messages of millions of events are not scanned for an id (seconds): the (job, timestamp)
    # index finds its events.
    job = JobFactory(id=uuid.UUID("63644131-0000-4000-8000-000000000001"))
    wanted = JobExecutionLogFactory(job=job)
    JobExecutionLogFactory(message=f"retried after {job.id}")

    for term in (str(job.id), job.id.hex, "63644131"):
        response = log_viewer.get(LOG_LIST, {"q": term})
        assert [log.id for log in response.context["cl"].result_list] == [wanted.id], term


@pytest.mark.parametrize("word", ["timed out", "added", "decade"])  # the last two are hex digits, fewer than a short id
def test_words_searched_still_find_the_messages(log_viewer, word):
    wanted = JobExecutionLogFactory(message=f"connection {word}")
    JobExecutionLogFactory(message="halfway")

    response = log_viewer.get(LOG_LIST, {"q": word})

    assert [log.id for log in response.context["cl"].result_list] == [wanted.id]


def test_the_execution_log_list_sorts_by_time_only_even_when_asked_by_hand(log_viewer):
    # Sorting by another column sorted every event (3 to 5 s at 5 million).
    now = timezone.now()
    older = JobExecutionLogFactory(timestamp=now - timedelta(minutes=1), message="a")
    newer = JobExecutionLogFactory(timestamp=now, message="b")
    message_column = monitoring_admin.JobExecutionLogAdmin.list_display.index("message")  # ?o= counts from 0

    response = log_viewer.get(LOG_LIST, {"o": str(message_column)})

    assert [log.id for log in response.context["cl"].result_list] == [newer.id, older.id]  # the latest first
    assert "sortable column-message" not in response.content.decode()


@pytest.fixture
def health_viewer(client):
    return staff_viewer(client, "monitoring.view_systemhealthmetric")


def test_the_health_results_list_counts_them_only_as_far_as_it_pages(
    health_viewer, monkeypatch, django_assert_max_num_queries
):
    """Drill: a row per component per check, 30 days kept (691,000 rows on Postgres): admin's
    COUNT(*) read all of them on every page (58-93 ms, filtered or not; the page itself 2-12 ms)."""
    monkeypatch.setattr("jobs.admin.MAX_COUNTED_ROWS", 2)
    SystemHealthMetricFactory.create_batch(3, status=HealthStatus.WARNING)

    with django_assert_max_num_queries(6) as captured:
        response = health_viewer.get(reverse("admin:monitoring_systemhealthmetric_changelist"), {"status": "warning"})

    assert response.context["cl"].result_count == 2
    assert len(response.context["cl"].result_list) == 3  # the page itself is not cut
    assert "2 or more system health metrics (counted no further)" in response.content.decode()
    (count,) = [query["sql"] for query in captured.captured_queries if "COUNT(*)" in query["sql"]]
    assert "LIMIT 2" in count


@pytest.mark.parametrize("status", [HealthStatus.WARNING, HealthStatus.CRITICAL])
def test_the_health_results_filtered_by_status_are_counted_and_paged_from_an_index(
    health_viewer, postgres_only, django_assert_max_num_queries, status
):
    """Drill (EXPLAIN, 691,000 rows, 30 days of checks, 5 % of them warning or critical, on Postgres):
    filtered by status, the count read the whole table (26-81 ms) and the page walked the healthy
    rows newest first until it had a page. From health_status_time_idx: 0.1-4 ms."""
    SystemHealthMetricFactory.create_batch(3, status=status)
    SystemHealthMetricFactory.create_batch(3, status=HealthStatus.HEALTHY)

    with django_assert_max_num_queries(6) as captured:
        response = health_viewer.get(reverse("admin:monitoring_systemhealthmetric_changelist"), {"status": status})

    assert len(response.context["cl"].result_list) == 3
    health_queries = [query["sql"] for query in captured.captured_queries if "system_health_metrics" in query["sql"]]
    assert len(health_queries) == 2  # the count and the page
    for sql in health_queries:
        explained = plan(sql)
        assert "health_status_time_idx" in explained, explained
        assert "Filter" not in explained and "Sort" not in explained, explained
