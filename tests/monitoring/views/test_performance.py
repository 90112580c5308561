"""The performance page: execution time, throughput and success rate over a chosen timeframe."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from jobs.models import JobStatus
from monitoring.models import EventType, JobExecutionLog
from tests.factories import JobExecutionLogFactory, JobFactory, JobRetryHistoryFactory, UserFactory
from tests.monitoring.views.conftest import HTMX, htmx

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def at(hh_mm: str) -> datetime:
    h, m = map(int, hh_mm.split(":"))
    return datetime(2026, 11, 29, h, m, tzinfo=UTC)


def outcome(job, when: str, event_type: str, status: str, ms: int | None = None, **extra):
    JobRetryHistoryFactory(job=job, attempt_number=1, started_at=at(when) - timedelta(seconds=5))
    JobExecutionLogFactory(
        job=job, event_type=event_type, status=status, timestamp=at(when), execution_time_ms=ms, **extra
    )


@pytest.fixture
def last_hour():
    """Between 02:00 and 03:00: ai_matching completed once and failed once; demo.sleep completed
    once and was cancelled once."""
    outcome(JobFactory(job_type="ai_matching"), "02:10", EventType.COMPLETED, JobStatus.COMPLETED, 100)
    failure = {"type": "ValueError", "message": "bad", "error_class": "data", "fingerprint": "f1"}
    outcome(JobFactory(job_type="ai_matching"), "02:20", EventType.ERROR, JobStatus.FAILED, 20, error_details=failure)
    outcome(JobFactory(job_type="demo.sleep"), "02:50", EventType.COMPLETED, JobStatus.COMPLETED, 1900)
    outcome(JobFactory(job_type="demo.sleep"), "02:55", EventType.CANCELLED, JobStatus.CANCELLED)


@time_machine.travel(NOW, tick=False)
def test_shows_success_rate_throughput_and_execution_time_overall_and_per_job_type(alice_client, last_hour):
    response = alice_client.get("/performance/")

    assert response.status_code == 200
    page = response.content.decode()
    cards = page.split('<div class="cards">')[1].split("</div>\n  </div>")[0]
    assert "66.7 %" in cards and "2 succeeded, 1 failed for good" in cards  # 2 / (2 + 1)
    assert '<span class="card-value">4</span>' in cards and "4.0 per hour · 1 cancelled" in cards
    assert '<span class="card-value">1.0 s</span>' in cards  # median of 100 and 1900 ms
    rows = page.split("<h2>By job type</h2>")[1]
    ai_matching = rows.split('title="only ai_matching">ai_matching</a></th>')[1].split("</tr>")[0]
    assert '<span class="num-inline">50 %</span>' in ai_matching
    assert 'href="?job_type=ai_matching"' in rows and "All types" in rows


@time_machine.travel(NOW, tick=False)
def test_over_a_long_timeframe_the_rate_reads_in_a_unit_where_it_is_not_zero(alice_client):
    """/performance/?timeframe=30d read "Jobs finished 159 · 0.00 per minute", and in By job type one
    row "0" (a type with a few jobs: 0.0 once rounded for the API) and the others "0.00"."""
    jobs = {"ai_matching": 150, "demo.sleep": 8, "demo.fail": 1}
    for job_type, count in jobs.items():
        job = JobFactory(job_type=job_type)
        done = {"event_type": EventType.COMPLETED, "status": JobStatus.COMPLETED, "execution_time_ms": 100}
        JobExecutionLog.objects.bulk_create(
            JobExecutionLogFactory.build(job=job, timestamp=NOW - timedelta(hours=4 * i + 1), **done)
            for i in range(count)
        )

    page = alice_client.get("/performance/?timeframe=30d").content.decode()

    cards = page.split('<div class="cards">')[1].split("</div>\n  </div>")[0]
    assert '<span class="card-value">159</span>' in cards and "5.3 per day · 0 cancelled" in cards
    rows = page.split("<h2>By job type</h2>")[1]

    def rate_of(job_type):
        return rows.split(f'title="only {job_type}">{job_type}</a></th>')[1].split("</tr>")[0].split("<td")[7]

    assert [rate_of(job_type) for job_type in jobs] == [
        ' class="num nowrap">5.0 per day</td>\n                ',
        ' class="num nowrap">0.3 per day</td>\n                ',
        ' class="num nowrap">&lt; 0.1 per day</td>\n                ',
    ]
    assert "0.00" not in page and "per minute</td>" not in rows


@pytest.mark.parametrize(
    ("completed", "shown"),
    [
        (2499, "99.96 %"),
        # success_rate is rounded to 4 places for the API (1.0 here): the page divides the counts.
        (20000, "99.995 %"),
    ],
)
@time_machine.travel(NOW, tick=False)
def test_a_success_rate_short_of_all_never_reads_100_percent(alice_client, completed, shown):
    """Attempts completed and one failed for good: never "100 %" beside "1 failed"."""
    job = JobFactory(job_type="ai_matching")
    outcome = {"event_type": EventType.COMPLETED, "status": JobStatus.COMPLETED, "execution_time_ms": 100}
    JobExecutionLog.objects.bulk_create(
        JobExecutionLogFactory.build_batch(completed, job=job, timestamp=at("02:30"), **outcome), batch_size=5000
    )
    JobExecutionLogFactory(job=job, event_type=EventType.ERROR, status=JobStatus.FAILED, timestamp=at("02:40"))

    page = alice_client.get("/performance/").content.decode()

    cards = page.split('<div class="cards">')[1].split("</div>\n  </div>")[0]
    assert f'<span class="card-value">{shown}</span>' in cards
    assert f"{completed} succeeded, 1 failed for good" in cards
    assert "100 %" not in page.split("<h2>By job type</h2>")[1]


@time_machine.travel(NOW, tick=False)
def test_draws_the_three_charts_with_exact_values_in_their_tooltips(alice_client, last_hour):
    page = alice_client.get("/performance/").content.decode()

    for chart in ("chart-latency", "chart-throughput", "chart-success-rate"):
        assert f'<figure class="chart" id="{chart}">' in page
    assert "<title>Nov 29 02:10–02:11 UTC\np50 (median): 100 ms\np95: 100 ms</title>" in page
    assert "<title>Nov 29 02:20–02:21 UTC\nsucceeded: 0\nfailed: 1\ncancelled: 0</title>" in page
    assert "<title>Nov 29 02:20–02:21 UTC\nsucceeded / (succeeded + failed): 0 %</title>" in page
    assert "<summary>Execution time of completed attempts as a table</summary>" in page
    assert "Points are 1 min buckets" in page


@time_machine.travel(NOW, tick=False)
def test_the_timeframe_and_job_type_live_in_the_query_string_and_polls_keep_them(alice_client, last_hour):
    response = alice_client.get("/performance/?timeframe=24h&job_type=demo.sleep")

    assert response.context["metrics"]["job_type"] == "demo.sleep"
    assert [row["job_type"] for row in response.context["metrics"]["by_job_type"]] == ["demo.sleep"]
    page = response.content.decode()
    assert 'hx-get="/performance/?timeframe=24h&amp;job_type=demo.sleep"' in page
    assert '<a href="/performance/?timeframe=7d&amp;job_type=demo.sleep" title="the last 7d">7d</a>' in page
    assert '<a href="/performance/?timeframe=24h&amp;job_type=demo.sleep" aria-current="page"' in page
    assert '<option value="demo.sleep" selected>' in page
    assert "Points are 15 min buckets" in page
    assert "<strong>demo.sleep</strong> jobs only" in page


def test_the_error_analysis_link_shows_the_same_timeframe_and_job_type(alice_client):
    """The error page's own default is 24h: a link without the timeframe showed another period."""
    default = alice_client.get("/performance/").content.decode()
    assert 'href="/errors/?timeframe=1h"' in default
    one_type = alice_client.get("/performance/?timeframe=6h&job_type=demo.sleep", headers=htmx("metrics-live"))
    assert 'href="/errors/?timeframe=6h&amp;job_type=demo.sleep"' in one_type.content.decode()


def test_a_job_type_no_longer_registered_can_still_be_looked_at(alice_client):
    page = alice_client.get("/performance/?job_type=imports.legacy").content.decode()
    assert '<option value="imports.legacy" selected>' in page


def test_bad_filters_are_a_400_naming_the_field(alice_client):
    response = alice_client.get("/performance/?timeframe=2h&job_type=%0A<script>alert(1)</script>")
    assert response.status_code == 400
    page = response.content.decode()
    assert "(<code>timeframe</code>): Select a valid choice. 2h is not one of the available choices.</li>" in page
    assert "(<code>job_type</code>): must not contain control characters</li>" in page
    assert "<script>" not in page.split('<main id="main" tabindex="-1">')[1]
    assert 'id="metrics-live"' not in page  # nothing polls a bad query


def test_a_hand_made_poll_with_bad_filters_gets_the_filter_errors(alice_client):
    response = alice_client.get("/performance/?timeframe=2h", headers=htmx("metrics-live"))
    assert response.status_code == 400
    assert "(<code>timeframe</code>): Select a valid choice." in response.content.decode()


def test_a_poll_gets_only_the_live_part_at_a_pace_that_suits_the_timeframe(alice_client):
    partial = alice_client.get("/performance/?timeframe=15m", headers=htmx("metrics-live")).content.decode()
    assert "<html" not in partial and partial.lstrip().startswith('<div id="metrics-live"')
    assert "every 10s [document.visibilityState === 'visible']" in partial
    assert "every 30s [document.visibilityState !== 'visible']" in partial

    month = alice_client.get("/performance/?timeframe=30d", headers=htmx("metrics-live")).content.decode()
    assert "every 300s [document.visibilityState === 'visible']" in month
    assert "every 300s [document.visibilityState !== 'visible']" in month  # never faster while hidden


def test_a_boosted_link_gets_the_whole_page(alice_client):
    # The timeframe tabs and the type filter are boosted: htmx swaps the body with the full page.
    page = alice_client.get("/performance/?timeframe=6h", headers={**HTMX, "HX-Boosted": "true"}).content.decode()
    assert "<html" in page and 'id="metrics-live"' in page


def test_an_empty_timeframe_says_what_to_do(alice_client):
    page = alice_client.get("/performance/?timeframe=15m").content.decode()
    assert "Nothing ran in the last 15m." in page
    assert '<a href="?timeframe=1h">1h</a>' in page and "python manage.py submit_job demo.sleep" in page
    assert "No data in this timeframe" in page
    assert "No job of any type ran in the last 15m." in page


def test_job_type_names_are_escaped(alice_client):
    outcome(JobFactory(job_type="<b>x</b>"), "02:10", EventType.COMPLETED, JobStatus.COMPLETED, 5)
    with time_machine.travel(NOW, tick=False):
        page = alice_client.get("/performance/").content.decode()
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page


def test_needs_the_metrics_permission(client):
    assert client.get("/performance/")["Location"] == "/accounts/login/?next=/performance/"
    client.force_login(UserFactory(permissions=["jobs.view_job"]))
    response = client.get("/performance/")
    assert response.status_code == 403 and b"monitoring.view_jobexecutionlog" in response.content
    assert b'href="/performance/"' not in client.get("/").content  # and no link to it


def test_renders_in_a_bounded_number_of_queries(alice_client, outcome_history, django_assert_max_num_queries):
    # session, user, permissions; performance_metrics without the error analysis the page does
    # not show: one statement on Postgres, five queries on SQLite
    budget = 4 if connection.vendor == "postgresql" else 8
    for timeframe in ("1h", "24h", "30d"):
        with django_assert_max_num_queries(budget):
            response = alice_client.get(f"/performance/?timeframe={timeframe}")
        assert response.status_code == 200
    assert response.context["metrics"]["overall"]["succeeded"] == 2700
    assert "top_errors" not in response.context["metrics"]
