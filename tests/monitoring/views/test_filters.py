"""What every dashboard filter form shares: the job types it takes and one value per filter."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import quote

import pytest
import time_machine

from jobs.models import JobStatus
from monitoring.models import EventType
from tests.factories import JobExecutionLogFactory, JobFactory

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
# Any printable name is a job type (jobs.registry; the API's JobTypeName takes it too).
JOB_TYPE = "reports/<i>build</i> & co"
ESCAPED = "reports/&lt;i&gt;build&lt;/i&gt; &amp; co"


def href_of(page: str, text: str) -> str:
    """The target of the first link whose text starts with `text`, as a browser would follow it."""
    return unescape(re.search(r'<a [^>]*href="([^"]+)"[^>]*>\s*' + re.escape(text), page).group(1))


@time_machine.travel(NOW, tick=False)
def test_any_job_type_the_api_takes_round_trips_through_the_dashboards_links_escaped(alice_client):
    job = JobFactory(job_type=JOB_TYPE, status=JobStatus.FAILED, finished_at=NOW - timedelta(minutes=10))
    JobExecutionLogFactory(
        job=job,
        event_type=EventType.ERROR,
        status=JobStatus.FAILED,
        timestamp=NOW - timedelta(minutes=10),
        error_details={"type": "ValueError", "message": "boom", "error_class": "data", "fingerprint": "value"},
    )
    errors = alice_client.get("/errors/?timeframe=1h").content.decode()
    assert ESCAPED in errors and JOB_TYPE not in errors

    # The error group's job type link: /errors/?timeframe=1h&job_type=reports%2F%3Ci%3E…
    filtered = alice_client.get("/errors/" + href_of(errors, ESCAPED))
    assert filtered.status_code == 200
    assert filtered.context["job_type"] == JOB_TYPE
    page = filtered.content.decode()
    assert f"<strong>{ESCAPED}</strong> jobs only" in page and "<i>build" not in page

    # Its "jobs failed for good" card lists them.
    failed = alice_client.get(_failed_jobs_link(page))
    assert failed.status_code == 200
    assert [row.id for row in failed.context["page"].object_list] == [job.id]
    assert "<i>build" not in failed.content.decode()

    performance = alice_client.get(f"/performance/?timeframe=1h&job_type={quote(JOB_TYPE)}")
    assert performance.status_code == 200
    assert performance.context["metrics"]["job_type"] == JOB_TYPE
    assert "<i>build" not in performance.content.decode()


def _failed_jobs_link(page: str) -> str:
    return unescape(re.search(r'href="(/jobs/\?view=finished&amp;status=failed[^"]*)"', page).group(1))


def test_a_job_type_with_control_characters_is_refused_as_the_api_refuses_it(alice_client):
    response = alice_client.get("/jobs/?job_type=a%0Ab")

    assert response.status_code == 400
    assert "<strong>Type</strong> (<code>job_type</code>): must not contain control characters</li>" in (
        response.content.decode()
    )


def test_a_refused_filter_is_named_by_its_label_on_the_page_and_its_name_in_the_url(alice_client):
    """An operator read "q: a job id is hex digits…" beside a field labelled "Job id"."""
    page = alice_client.get("/jobs/?view=finished&q=zz").content.decode()

    assert "<li><strong>Job id</strong> (<code>q</code>): a job id is hex digits and dashes, e.g. 3f2a9c1e</li>" in page
    assert "Start again without filters" not in page  # the list's own "Clear filters" is there
    assert "Clear filters</a>" in page
    errors = alice_client.get("/errors/?error=zzzz").content.decode()
    assert "<li><strong>Error</strong> (<code>error</code>): an error fingerprint is 16 hex digits" in errors
    assert "Start again without filters" in errors


@pytest.mark.parametrize(
    "url, field",
    [
        ("/jobs/?status=failed&status=running", "status"),
        ("/jobs/?job_type=a&job_type=a", "job_type"),
        ("/?timeframe=1h&timeframe=24h", "timeframe"),
        ("/performance/?timeframe=1h&timeframe=1h", "timeframe"),
        ("/errors/?job_type=a&job_type=b", "job_type"),
        ("/alerts/?severity=error&severity=critical", "severity"),
    ],
)
def test_a_filter_given_twice_is_a_400_naming_it_as_the_api_does(alice_client, url, field):
    response = alice_client.get(url)

    assert response.status_code == 400
    assert f"(<code>{field}</code>): given 2 times; give it once</li>" in response.content.decode()
