"""The overview: what is running now and what failed in the last hour, each a link to the detail."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from jobs.models import JobStatus
from tests.factories import (
    AlertHistoryFactory,
    JobExecutionLogFactory,
    JobFactory,
    SystemHealthMetricFactory,
    UserFactory,
)
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
    assert 'href="/jobs/?status=running" aria-label="running 2"' in page  # the count is outside the link
    assert response.context["failures_total"] == 1
    assert f'href="/jobs/{failed.id}/"' in page
    assert "5m 00s ago" in page
    assert "httpx.ConnectTimeout: timed out" in page
    assert 'href="/jobs/?view=finished&amp;status=failed&amp;window=1h"' in page


@time_machine.travel(NOW, tick=False)
def test_running_jobs_needing_attention_are_counted_with_a_link_to_them(alice_client):
    JobFactory(job_type="ai_matching", running=True, started_at=NOW - timedelta(minutes=9), updated_at=NOW)  # 90 %
    JobFactory(running=True, started_at=NOW - timedelta(minutes=4), updated_at=NOW - timedelta(minutes=4))  # silent
    JobFactory(running=True, started_at=NOW - timedelta(minutes=4), updated_at=NOW)

    page = alice_client.get("/").content.decode()

    assert '<a class="card-note text-warn" href="/jobs/?attention=1"' in page
    assert "⚠ 2 need attention →" in page


@time_machine.travel(NOW, tick=False)
def test_no_attention_note_while_every_running_job_is_fine(alice_client):
    JobFactory(running=True, started_at=NOW - timedelta(minutes=4), updated_at=NOW)
    page = alice_client.get("/").content.decode()
    assert "need attention" not in page and "card-warn" not in page.split("card-running")[1].split("</div>")[0]


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
    SystemHealthMetricFactory.create_batch(50)
    AlertHistoryFactory.create_batch(50)
    # session, user, 2 for permissions, counts, paused types, attention, failures, their count, outcomes,
    # health 2, open alerts
    with django_assert_max_num_queries(13):
        response = alice_client.get("/", headers=htmx("overview-live"))
    assert response.context["counts"]["total"] == 240
    assert response.context["open_alerts"]["total"] == 50


@time_machine.travel(NOW, tick=False)
def test_the_open_alerts_card_says_whether_someone_is_on_them(alice_client, alice):
    from alerts.services import alert_acknowledge

    first, second = AlertHistoryFactory.create_batch(2, severity="critical")
    with time_machine.travel(NOW - timedelta(minutes=90), tick=False):
        alert_acknowledge(alert=second, user=alice)  # lapsed an hour later: held no more

    def note():
        card = alice_client.get("/").content.decode().split("Open alerts →")[1].split("</div>")[0]
        return card.split('<span class="card-note">')[1].split("</span>")[0]

    # Until all are, the note leads to the ones nobody is on.
    to_them = '<a href="/alerts/?unacknowledged=1" title="The open alerts nobody said they are on">'
    assert note() == f"{to_them}none acknowledged yet →</a>"
    alert_acknowledge(alert=first, user=alice)
    assert note() == f"{to_them}1 not acknowledged yet →</a>"
    alert_acknowledge(alert=second, user=alice)
    assert note() == "✓ all acknowledged"
    listed = alice_client.get("/alerts/").content.decode().split('id="alert-list-counts"')[1]
    assert "· ✓ 2 acknowledged</span>" in listed


@time_machine.travel(NOW, tick=False)
def test_shows_health_open_alerts_by_severity_and_the_timeframes_success_rate(alice_client):
    SystemHealthMetricFactory(
        timestamp=NOW, status="warning", metric_name="database.latency_ms", metric_type="database"
    )
    AlertHistoryFactory.create_batch(2, severity="critical")
    AlertHistoryFactory(severity="warning")
    AlertHistoryFactory(severity="critical", resolved_at=NOW)
    outcomes = [(2, "completed", "completed"), (5, "completed", "completed"), (20, "error", "failed")]
    for hours_ago, event_type, status in outcomes:
        JobExecutionLogFactory(event_type=event_type, status=status, timestamp=NOW - timedelta(hours=hours_ago))

    response = alice_client.get("/?timeframe=24h")

    page = response.content.decode()
    health = page.split('class="card card-health')[1].split("</a>")[0]
    assert 'href="/health/"' in health and "badge-warning" in health and "1 components, checked 0.0 s ago" in health
    alerts = page.split("Open alerts →")[1].split("</div>")[0]
    assert '<span class="card-value">3</span>' in alerts
    assert '<a href="/alerts/?severity=critical" title="2 open critical alerts">' in alerts
    assert '<a href="/alerts/?severity=info" class="muted" title="0 open info alerts">' in alerts
    assert ">none acknowledged yet →</a></span>" in alerts
    assert "The last 24 hours" in page
    assert response.context["outcomes"]["success_rate"] == 0.6667  # rounded as performance_metrics rounds it
    assert "66.7 %" in page and "2 completed, 1 failure for good" in page
    assert 'href="/performance/?timeframe=24h"' in page and 'href="/errors/?timeframe=24h"' in page
    with time_machine.travel(NOW, tick=False):
        assert alice_client.get("/?timeframe=1h").context["outcomes"]["success_rate"] is None


@time_machine.travel(NOW, tick=False)
def test_failures_for_good_and_failed_jobs_are_told_apart(alice_client):
    """Outcomes count each failure for good (as the performance page does); the failed-jobs card
    counts the jobs still failed. A retry by hand makes them differ: they must not read as one figure."""
    twice = JobFactory(failed=True, finished_at=NOW - timedelta(minutes=5))  # failed, retried by hand, failed
    retried = JobFactory(status=JobStatus.QUEUED)  # failed, retried by hand, waiting to run
    for job, minutes_ago in ((twice, 30), (twice, 5), (retried, 20)):
        failure = {"event_type": "error", "status": "failed", "timestamp": NOW - timedelta(minutes=minutes_ago)}
        JobExecutionLogFactory(job=job, **failure)
    JobExecutionLogFactory(event_type="completed", status="completed", timestamp=NOW - timedelta(minutes=1))

    response = alice_client.get("/")

    assert response.context["outcomes"]["failed"] == 3 and response.context["failures_total"] == 1
    cards = response.content.decode().split('<div class="columns">')[0]
    success, failed_jobs = cards.split('<span class="card-label">Success rate</span>')[1].split("jobs</span>")[:2]
    assert "1 completed, 3 failures for good" in success
    assert '<span class="card-value">1</span>' in failed_jobs
    assert "still failed: failed for good and not retried by hand since" in failed_jobs


@time_machine.travel(NOW, tick=False)
def test_the_timeframe_sets_the_failures_shown_and_their_link(alice_client):
    JobFactory(failed=True, finished_at=NOW - timedelta(hours=3))
    assert alice_client.get("/").context["failures_total"] == 0
    response = alice_client.get("/?timeframe=6h")
    assert response.context["failures_total"] == 1
    assert "Failures in the last 6 hours" in response.content.decode()
    assert 'href="/jobs/?view=finished&amp;status=failed&amp;window=24h"' in response.content.decode()  # covers 6h
    assert 'window=7d"' in alice_client.get("/?timeframe=30d").content.decode()  # the longest the list offers
    assert 'hx-get="/?timeframe=6h"' in response.content.decode()  # polls keep it


@pytest.mark.parametrize(
    ("timeframe", "window", "differs"),
    [("15m", "1h", True), ("1h", "1h", False), ("6h", "24h", True), ("24h", "24h", False), ("30d", "7d", True)],
)
def test_the_failed_jobs_card_says_which_period_its_list_shows_when_it_differs(
    alice_client, timeframe, window, differs
):
    """Re-check: at 15m the card counted 17 failed jobs and opened the last hour's list of 19, without
    a word (the Errors page's card says it, as the failures panel's own link does)."""
    page = alice_client.get(f"/?timeframe={timeframe}").content.decode()
    card = page.split("still failed: failed for good and not retried by hand since")[1].split("</a>")[0]
    assert f'href="/jobs/?view=finished&amp;status=failed&amp;window={window}"' in page
    assert ("(the list shows the last" in card) is differs


def test_a_bad_timeframe_is_a_400_naming_the_field(alice_client):
    response = alice_client.get("/?timeframe=forever")
    assert response.status_code == 400
    assert "(<code>timeframe</code>): Select a valid choice." in response.content.decode()


def test_figures_from_pages_the_user_may_not_open_are_left_out(client, django_assert_max_num_queries):
    client.force_login(UserFactory(permissions=["jobs.view_job"]))
    with django_assert_max_num_queries(9):  # no health, no alerts
        response = client.get("/")
    page = response.content.decode()
    assert response.context["health"] is None and response.context["open_alerts"] is None
    assert "System health" not in page and "Open alerts" not in page
    assert 'href="/performance/' not in page and 'href="/errors/' not in page


def poll_seconds(page: str, part: str) -> tuple[int, int]:
    """(visible, hidden) seconds between the polls of the element `part` in `page`."""
    trigger = re.search(rf'<div id="{part}"[^>]* hx-trigger="([^"]*)"', page)[1]
    visible, hidden = re.findall(r"every (\d+)s \[document\.visibilityState (?:===|!==) 'visible'\]", trigger)
    return int(visible), int(hidden)


@pytest.mark.parametrize(
    "timeframe, window_poll",
    [("15m", (10, 30)), ("1h", (15, 30)), ("6h", (30, 30)), ("24h", (60, 60)), ("7d", (300, 300)), ("30d", (300, 300))],
)
def test_the_timeframes_figures_are_polled_as_often_as_they_move_what_runs_now_every_5_s(
    alice_client, timeframe, window_poll
):
    """Drill: the overview polled its 30-day figures every 5 s, with what runs now (140 ms of
    database per poll at 200,000 jobs, on Postgres), where the Performance page polls them every 5 min."""
    page = alice_client.get(f"/?timeframe={timeframe}").content.decode()

    assert poll_seconds(page, "overview-live") == (5, 30)
    assert poll_seconds(page, "overview-window") == window_poll
    assert f'hx-get="/?timeframe={timeframe}"' in page


@time_machine.travel(NOW, tick=False)
def test_a_poll_of_what_runs_now_computes_none_of_the_timeframes_figures(alice_client, django_assert_max_num_queries):
    JobFactory(job_type="ai_matching", running=True)
    JobFactory(failed=True, finished_at=NOW - timedelta(minutes=5))

    # session, user, 2 for permissions, counts, paused types, attention, health 2, open alerts 1-2
    with django_assert_max_num_queries(11):
        response = alice_client.get("/?timeframe=30d", headers=htmx("overview-live"))

    partial = response.content.decode()
    assert partial.lstrip().startswith('<div id="overview-live"')
    assert '<section id="overview-types" class="panel" hx-swap-oob="true">' in partial  # the panel below
    assert 'href="/jobs/?job_type=ai_matching"' in partial
    assert "outcomes" not in response.context and "failures" not in response.context
    assert 'id="overview-window"' not in partial and 'id="overview-failures"' not in partial


@time_machine.travel(NOW, tick=False)
def test_a_poll_of_the_timeframes_figures_computes_only_them(alice_client, django_assert_max_num_queries):
    JobFactory(job_type="ai_matching", running=True)
    failed = JobFactory(failed=True, finished_at=NOW - timedelta(minutes=5))

    # session, user, 2 for permissions, failures, their count, outcomes
    with django_assert_max_num_queries(7):
        response = alice_client.get("/?timeframe=30d", headers=htmx("overview-window"))

    partial = response.content.decode()
    assert partial.lstrip().startswith('<div id="overview-window"')
    assert '<section id="overview-failures" class="panel" hx-swap-oob="true">' in partial
    assert f'href="/jobs/{failed.id}/"' in partial
    assert "counts" not in response.context and "health" not in response.context
    assert 'id="overview-live"' not in partial and 'id="overview-types"' not in partial


def test_the_whole_page_shows_both_parts_and_their_panels_in_place(alice_client):
    page = alice_client.get("/?timeframe=7d").content.decode()

    ids = re.findall(r'id="(overview-[a-z]+)"', page)
    assert ids == ["overview-live", "overview-window", "overview-types", "overview-failures"]
    assert "hx-swap-oob" not in page


@time_machine.travel(NOW, tick=False)
def test_the_throughput_reads_in_a_unit_where_it_is_not_zero(alice_client):
    """Four jobs finished in the last 7 days read "0.00" jobs finished per minute."""
    for hours_ago in (1, 30, 50, 100):
        JobExecutionLogFactory(event_type="completed", status="completed", timestamp=NOW - timedelta(hours=hours_ago))

    page = alice_client.get("/?timeframe=7d").content.decode()

    card = page.split('<span class="card-label">Throughput</span>')[1].split("</div>")[0]
    assert '<span class="card-value">0.6 per day</span>' in card and "jobs finished, on average" in card
