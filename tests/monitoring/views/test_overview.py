"""The overview: what is running now and what failed in the last hour, each a link to the detail."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from jobs.models import JobStatus
from tests.factories import JobFactory
from tests.monitoring.views.conftest import htmx

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
def test_shows_active_jobs_by_status_and_type_and_the_last_hours_failures(alice_client):
    JobFactory.create_batch(2, job_type="ai_matching", running=True)
    JobFactory(job_type="demo.sleep", status=JobStatus.RETRYING)
    failed = JobFactory(job_type="ai_matching", failed=True, finished_at=NOW - timedelta(minutes=5))
    JobFactory(failed=True, finished_at=NOW - timedelta(hours=3))  # too old for the list

    response = alice_client.get("/")

    assert response.status_code == 200
    page = response.content.decode()
    assert response.context["counts"]["by_status"] == {"queued": 0, "running": 2, "retrying": 1}
    assert '<a href="/jobs/?job_type=ai_matching&amp;status=running">2</a>' in page
    assert response.context["failures_total"] == 1
    assert f'href="/jobs/{failed.id}/"' in page
    assert "5m 00s ago" in page
    assert "httpx.ConnectTimeout: timed out" in page
    assert 'href="/jobs/?view=finished&amp;status=failed&amp;window=1h"' in page


def test_an_empty_system_says_how_to_start_a_job(alice_client):
    page = alice_client.get("/").content.decode()
    assert "No active jobs. Submit one with <code>python manage.py submit_job demo.sleep</code>" in page
    assert "No job failed in the last hour." in page


def test_htmx_polls_get_only_the_live_part(alice_client):
    JobFactory(running=True)
    full = alice_client.get("/").content.decode()
    partial = alice_client.get("/", headers=htmx("overview-live")).content.decode()

    assert "<html" in full and 'id="overview-live"' in full
    assert "<html" not in partial and partial.lstrip().startswith('<div id="overview-live"')
    assert 'hx-trigger="every 5s' in partial


def test_failure_messages_are_escaped(alice_client):
    JobFactory(failed=True, finished_at=datetime.now(UTC), message="<script>alert('x')</script>")
    page = alice_client.get("/").content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_renders_in_a_bounded_number_of_queries(alice_client, big_history, django_assert_max_num_queries):
    with django_assert_max_num_queries(7):  # session, user, 2 for permissions, counts, failures, their count
        response = alice_client.get("/")
    assert response.context["counts"]["total"] == 240
