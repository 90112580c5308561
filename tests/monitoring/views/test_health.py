"""System health: each component's latest status and value, its last hour, the overall badge."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from jobs.models import JobStatus
from monitoring.models import SystemHealthMetric
from tests.factories import JobFactory, SystemHealthMetricFactory, UserFactory
from tests.monitoring.views.conftest import htmx

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
SCRIPT = "<script>alert('pwned')</script>"


def check(minutes_ago: float, metric_type: str, name: str, value: float, status: str = "healthy", **details):
    return SystemHealthMetricFactory(
        timestamp=NOW - timedelta(minutes=minutes_ago),
        metric_type=metric_type,
        metric_name=name,
        metric_value=value,
        status=status,
        details=details,
    )


@pytest.fixture
def checks():
    """Three runs a minute apart; the AI service got slow in the latest."""
    for minutes_ago in (2, 1, 0):
        check(minutes_ago, "database", "database.latency_ms", 2 + minutes_ago, message="SELECT 1 in 2 ms")
        check(minutes_ago, "resource", "cpu.percent", 27.5, message="CPU 27.5 % on vm-1", host="vm-1")
        check(minutes_ago, "job_queue", "jobs.oldest_queued_age_s", 245, message="oldest queued job waiting 245s")
    check(2, "api", "ai_matching", 120, message="HTTP 200 in 120 ms")
    check(1, "api", "ai_matching", 1500, "warning", message="HTTP 200 in 1500 ms (slow)")
    check(0, "api", "ai_matching", 5000, "critical", message="no answer within 5s")


@time_machine.travel(NOW, tick=False)
def test_shows_each_components_status_value_and_message_and_the_worst_overall(alice_client, checks):
    response = alice_client.get("/health/")

    assert response.status_code == 200
    page = response.content.decode()
    overall = page.split('class="overall"')[1].split("</p>")[0]
    assert '<span class="badge-symbol" aria-hidden="true">‼</span> critical' in overall  # symbol and word
    assert "The worst of 4 components, checked" in page and "0.0 s ago" in page
    assert [s["title"] for s in response.context["sections"]] == [
        "Database",
        "External services",
        "Host resources",
        "Job queue and workers",
    ]
    rows = {c["metric_name"]: c for s in response.context["sections"] for c in s["components"]}
    assert {name: (c["status"], c["value"]) for name, c in rows.items()} == {
        "database.latency_ms": ("healthy", "2 ms"),
        "ai_matching": ("critical", "5.0 s"),
        "cpu.percent": ("healthy", "27.5 %"),
        "jobs.oldest_queued_age_s": ("healthy", "4m 05s"),
    }
    assert "no answer within 5s" in page and "on vm-1" in page


@time_machine.travel(NOW, tick=False)
def test_each_component_shows_its_last_hour_with_bad_checks_marked(alice_client, checks):
    check(61, "api", "ai_matching", 99, message="too old for the sparkline")
    response = alice_client.get("/health/")

    ai = next(c for s in response.context["sections"] for c in s["components"] if c["metric_name"] == "ai_matching")
    assert (ai["checks"], ai["not_healthy"], ai["low"], ai["high"]) == (3, 2, "120 ms", "5.0 s")
    sparkline = str(ai["sparkline"])
    assert 'aria-label="ai_matching: 3 checks, from 120 ms to 5.0 s"' in sparkline
    assert "<title>Nov 29 02:59:00 UTC: 1.5 s (warning)</title>" in sparkline
    assert "3 checks, 120 ms to 5.0 s, <strong>2 not healthy</strong>" in response.content.decode()


def test_before_any_check_it_says_how_to_run_them(alice_client):
    page = alice_client.get("/health/").content.decode()
    assert "No health check has run yet." in page
    assert "<code>python manage.py run_health_checks</code>" in page
    assert 'aria-hidden="true">?</span> no results yet' in page


def test_results_older_than_three_runs_are_flagged_as_stale(alice_client, settings):
    settings.HEALTH = {**settings.HEALTH, "STALE_AFTER_MINUTES": 3}
    check(4, "database", "database.latency_ms", 2)
    JobFactory(running=True, heartbeat_at=NOW)  # a worker is alive, busy: only the checks are late
    with time_machine.travel(NOW, tick=False):
        page = alice_client.get("/health/").content.decode()
        overview = alice_client.get("/").content.decode()
    assert "These results are 4m 00s old: the checks have stopped running." in page
    assert "⚠ checks stopped 4m 00s ago" in overview
    with time_machine.travel(NOW - timedelta(minutes=2), tick=False):
        assert "the checks have stopped running" not in alice_client.get("/health/").content.decode()


@pytest.fixture
def no_worker(settings):
    """The cluster died: the last checks (one saw 2 workers) are 3m 53s old, 4 jobs wait."""
    settings.HEALTH = {**settings.HEALTH, "STALE_AFTER_MINUTES": 3}
    stopped = 3 + 53 / 60
    check(stopped, "database", "database.latency_ms", 2, message="SELECT 1 in 2 ms")
    check(stopped, "job_queue", "jobs.queued", 4, "warning", message="4 queued, 0 waiting to retry")
    check(stopped, "job_queue", "cluster.workers", 2, message=f"2 workers in 1 cluster on {SCRIPT}")
    for minutes_ago in (5, 4, 2, 1):
        JobFactory(status=JobStatus.QUEUED, updated_at=NOW - timedelta(minutes=minutes_ago))


NO_WORKER = "No worker is running: health checks stopped 3m 53s ago; 4 jobs queued, the oldest since 02:55 UTC"


@time_machine.travel(NOW, tick=False)
def test_with_no_worker_the_health_page_says_so_and_the_stored_worker_count_is_stale(alice_client, no_worker):
    response = alice_client.get("/health/")

    page = response.content.decode()
    assert f'<p class="notice notice-error"><strong>{NO_WORKER}.</strong>' in page
    # Starting a cluster is not always the fix: the watchdog's alert says why none is seen.
    assert "the alert of <code>manage.py cluster_watchdog</code> names the likely cause" in page
    overall = page.split('class="overall"')[1].split("</p>")[0]
    assert "‼</span> critical" in overall
    rows = {c["metric_name"]: c for s in response.context["sections"] for c in s["components"]}
    assert (rows["cluster.workers"]["status"], rows["cluster.workers"]["stale"]) == ("unknown", True)
    row = page.split("<code>cluster.workers</code>")[1].split("</tr>")[0]
    assert "badge-healthy" not in row and "?</span> stale</span>" in row
    assert "<strong>Not current:</strong> last reading 3m 53s ago," in row
    assert "<script>alert" not in page and "on &lt;script&gt;alert(" in row


@time_machine.travel(NOW, tick=False)
def test_with_no_worker_the_overview_says_so_instead_of_the_last_status(alice_client, no_worker):
    page = alice_client.get("/", headers=htmx("overview-live")).content.decode()

    card = page.split('class="card card-health')[1].split("</a>")[0]
    assert card.startswith(" card-alarm")
    assert "‼</span> critical" in card and "badge-warning" not in card
    assert f"<strong>‼ {NO_WORKER}</strong>" in card
    assert "checks stopped 3m 53s ago</strong>" not in card


def test_with_no_worker_the_pages_stay_within_their_queries(alice_client, no_worker, django_assert_max_num_queries):
    with time_machine.travel(NOW, tick=False):
        # session, user, permissions, latest health 2, worker seen 2, the components' histories, hosts
        with django_assert_max_num_queries(9):
            assert "No worker is running" in alice_client.get("/health/", headers=htmx("health-live")).content.decode()
        # the overview's 12 (test_overview.py) and worker seen 2
        with django_assert_max_num_queries(14):
            assert "No worker is running" in alice_client.get("/", headers=htmx("overview-live")).content.decode()


@time_machine.travel(NOW, tick=False)
@time_machine.travel(NOW, tick=False)
def test_a_service_failing_the_jobs_calling_it_links_to_their_failures(alice_client, client):
    """A drill saw "30 of 60 ai_matching attempts failed calling it" with nowhere to go from there: its
    failures are on the Errors page, whose error groups lead to the failed jobs to retry."""
    message = "HTTP 200 in 8 ms; 30 of 60 ai_matching attempts failed calling it in the last 5 min: 50 %"
    failing = {"message": message, "failed_calls": 30, "window_minutes": 5, "job_types": ["ai_matching"]}
    check(0, "api", "ai_matching", 8, "critical", **failing)
    check(0, "api", "geocoder", 9, message="HTTP 200 in 9 ms", failed_calls=0, window_minutes=5)

    page = alice_client.get("/health/", headers=htmx("health-live")).content.decode()

    assert page.count("failures →") == 1
    assert '<a href="/errors/?timeframe=15m&amp;job_type=ai_matching">ai_matching failures →</a>' in page
    # Only to those who may open the Errors page.
    client.force_login(UserFactory(permissions=["monitoring.view_systemhealthmetric"]))
    assert "failures →" not in client.get("/health/").content.decode()


def test_messages_and_names_are_escaped(alice_client):
    check(0, "api", SCRIPT, 10, "warning", message=SCRIPT, host=SCRIPT)
    page = alice_client.get("/health/").content.decode()
    assert "<script>alert" not in page
    assert page.count("&lt;script&gt;alert(") >= 3


@time_machine.travel(NOW, tick=False)
def test_a_poll_gets_only_the_live_part(alice_client, checks):
    partial = alice_client.get("/health/", headers=htmx("health-live")).content.decode()
    assert "<html" not in partial and partial.lstrip().startswith('<div id="health-live"')
    assert "every 15s [document.visibilityState === 'visible']" in partial


def test_needs_the_health_permission(client):
    client.force_login(UserFactory(permissions=["jobs.view_job"]))
    response = client.get("/health/")
    assert response.status_code == 403 and b"monitoring.view_systemhealthmetric" in response.content
    assert b'href="/health/"' not in client.get("/").content


@time_machine.travel(NOW, tick=False)
def test_renders_in_a_bounded_number_of_queries(alice_client, django_assert_max_num_queries):
    # Four components, a check every 30 s for a day: 11,520 rows.
    names = [("database", "database.latency_ms"), ("api", "ai_matching"), ("resource", "cpu.percent")]
    names.append(("job_queue", "jobs.queued"))
    SystemHealthMetric.objects.bulk_create(
        SystemHealthMetric(
            timestamp=NOW - timedelta(seconds=30 * i),
            metric_type=kind,
            metric_name=name,
            metric_value=i % 50,
            status="healthy",
        )
        for i in range(2880)
        for kind, name in names
    )
    # session, user, permissions, latest 2, the components' histories, the workers by host
    with django_assert_max_num_queries(7):
        response = alice_client.get("/health/")
    assert all(c["checks"] == 120 for s in response.context["sections"] for c in s["components"])


@time_machine.travel(NOW, tick=False)
def test_the_queries_do_not_grow_with_the_number_of_components(alice_client, django_assert_max_num_queries):
    for components in (2, 30):  # services, hosts' resources...
        SystemHealthMetric.objects.all().delete()
        for n in range(components):
            for minutes_ago in (2, 1, 0):
                check(minutes_ago, "api", f"service_{n}", n + minutes_ago)
        # session, user, permissions, latest 2, the components' histories, the workers by host
        with django_assert_max_num_queries(7):
            response = alice_client.get("/health/")
        shown = [c for s in response.context["sections"] for c in s["components"]]
        assert len(shown) == components and all(c["checks"] == 3 for c in shown)
    assert {c["metric_name"]: (c["low"], c["high"]) for c in shown}["service_7"] == ("7 ms", "9 ms")


# --- host resources: the checks run on whichever node picks them up ----------------------------


def disk_on(host: str, minutes_ago: float, percent: float, status: str = "healthy"):
    return check(
        minutes_ago,
        "resource",
        "disk.percent",
        percent,
        status,
        message=f"disk / {percent} % full on {host}",
        host=host,
    )


@time_machine.travel(NOW, tick=False)
def test_each_host_has_its_own_row_status_and_last_hour(alice_client):
    # The runs alternate between two nodes; node-a's disk is full, node-b's is fine.
    for minutes_ago in (4, 2):
        disk_on("node-a", minutes_ago, 97, "critical")
    for minutes_ago in (3, 1):
        disk_on("node-b", minutes_ago, 50)
    check(1, "database", "database.latency_ms", 2, message="SELECT 1 in 2 ms")

    response = alice_client.get("/health/")

    page = response.content.decode()
    assert "The worst of 3 components" in page
    assert '<span class="badge-symbol" aria-hidden="true">‼</span> critical' in page.split('class="overall"')[1]
    resources = next(s for s in response.context["sections"] if s["title"] == "Host resources")["components"]
    assert [(c["host"], c["status"], c["value"], c["checks"], c["low"], c["high"]) for c in resources] == [
        ("node-a", "critical", "97 %", 2, "97 %", "97 %"),  # the worst first
        ("node-b", "healthy", "50 %", 2, "50 %", "50 %"),
    ]
    assert 'aria-label="disk.percent on node-a: 2 checks' in str(resources[0]["sparkline"])
    assert "on node-a" in page and "on node-b" in page


@time_machine.travel(NOW, tick=False)
def test_a_host_that_stopped_reporting_leaves_the_page(alice_client, settings):
    settings.HEALTH = {**settings.HEALTH, "FORGET_AFTER_MINUTES": 15}
    disk_on("node-gone", 20, 99, "critical")  # taken out of the cluster since
    disk_on("node-a", 14, 50)  # it last sampled 14 minutes before the latest checks: still shown, as of then
    disk_on("node-b", 0, 50)
    check(0, "database", "database.latency_ms", 2, message="SELECT 1 in 2 ms")

    response = alice_client.get("/health/")

    shown = [c["host"] for s in response.context["sections"] for c in s["components"] if c["host"]]
    assert shown == ["node-a", "node-b"]
    assert "(as of 14m 00s ago)" in response.content.decode()
    assert "node-gone" not in response.content.decode()


@time_machine.travel(NOW, tick=False)
def test_the_queries_stay_flat_with_five_hosts(alice_client, django_assert_max_num_queries):
    for run in range(60):  # an hour of samples, a node's each minute, and of the checks
        host = f"node-{run % 5}"
        for name in ("cpu.percent", "memory.percent", "disk.percent"):
            check(run, "resource", name, 40 + run % 5, message=f"{name} on {host}", host=host)
        check(run, "database", "database.latency_ms", 2, message="SELECT 1 in 2 ms")
    # session, user, permissions, latest 2, the components' histories, the workers by host
    with django_assert_max_num_queries(7):
        response = alice_client.get("/health/")
    shown = [c for s in response.context["sections"] for c in s["components"] if c["host"]]
    assert len(shown) == 15 and {c["checks"] for c in shown} == {12}


# --- workers, by host -------------------------------------------------------------------------


def ran_on(worker: str, status: str, *, minutes_ago: float = 5, **fields):
    moment = NOW - timedelta(minutes=minutes_ago)
    if status == JobStatus.RUNNING:
        return JobFactory(running=True, worker=worker, heartbeat_at=moment, updated_at=moment, **fields)
    if status == JobStatus.RETRYING:
        return JobFactory(status=status, worker=worker, updated_at=moment, **fields)
    trait = {"completed": True} if status == JobStatus.COMPLETED else {"failed": True}
    return JobFactory(worker=worker, started_at=moment, finished_at=moment, updated_at=moment, **trait, **fields)


@time_machine.travel(NOW, tick=False)
def test_each_host_shows_its_processes_running_jobs_and_latest_attempts(alice_client):
    ran_on("node-a:101", JobStatus.RUNNING, minutes_ago=0.2)
    ran_on("node-a:102", JobStatus.COMPLETED)
    ran_on("node-a:102", JobStatus.COMPLETED, minutes_ago=90)  # before the hour: not counted
    ran_on("node-b:7", JobStatus.FAILED)
    ran_on("node-b:7", JobStatus.RETRYING)  # its attempt there failed; waiting for the next
    ran_on("node-b:7", JobStatus.COMPLETED, minutes_ago=30)
    JobFactory(status=JobStatus.QUEUED)  # on no worker yet

    response = alice_client.get("/health/")

    hosts = {h["host"]: h for h in response.context["worker_hosts"]}
    assert list(hosts) == ["node-a", "node-b"]
    assert (hosts["node-a"]["processes"], hosts["node-a"]["running"], hosts["node-a"]["succeeded"]) == (
        ["101", "102"],
        1,
        1,
    )
    assert (hosts["node-b"]["succeeded"], hosts["node-b"]["failed"], hosts["node-b"]["suspect"]) == (1, 2, False)
    assert hosts["node-a"]["last_seen"] == NOW - timedelta(minutes=0.2)  # the running job's heartbeat
    page = response.content.decode()
    row = page.split("<code>node-b</code>")[1].split("</tr>")[0]
    assert '1: <span class="muted">pid 7</span>' in row and "<strong>2</strong>" in row and "67 %" in row


@time_machine.travel(NOW, tick=False)
def test_a_host_failing_far_more_than_the_others_is_flagged(alice_client):
    for _ in range(5):
        ran_on("node-bad:1", JobStatus.FAILED)
    ran_on("node-bad:1", JobStatus.COMPLETED)
    for _ in range(9):
        ran_on("node-ok:1", JobStatus.COMPLETED)
    ran_on("node-ok:1", JobStatus.FAILED)

    page = alice_client.get("/health/").content.decode()

    bad = page.split("<code>node-bad</code>")[1].split("</th>")[0]
    assert "⚠ fails 83 % of its jobs, the other hosts 10 %: is this host's environment broken?" in bad
    assert "⚠ fails" not in page.split("<code>node-ok</code>")[1].split("</tr>")[0]


@pytest.mark.parametrize(
    "bad_failed, bad_succeeded, others_failed, flagged",
    [
        (5, 5, 0, True),  # half, and the others fine
        (4, 0, 0, False),  # all failed, but too few to tell a host from bad luck
        (5, 6, 0, False),  # under half
        (5, 3, 6, False),  # the others fail half the time too: the jobs, not the host
    ],
)
@time_machine.travel(NOW, tick=False)
def test_the_flag_needs_enough_failures_a_high_share_and_others_doing_better(
    bad_failed, bad_succeeded, others_failed, flagged
):
    from monitoring.selectors import worker_hosts

    for status, n, worker in [
        (JobStatus.FAILED, bad_failed, "bad:1"),
        (JobStatus.COMPLETED, bad_succeeded, "bad:1"),
        (JobStatus.FAILED, others_failed, "good:1"),
        (JobStatus.COMPLETED, 6, "good:1"),
    ]:
        for _ in range(n):
            ran_on(worker, status)
    assert {h["host"]: h["suspect"] for h in worker_hosts(NOW)}["bad"] is flagged


def test_with_no_job_run_lately_it_says_so(alice_client):
    assert "No job ran on any worker in the last 60 min." in alice_client.get("/health/").content.decode()


@time_machine.travel(NOW, tick=False)
def test_worker_names_are_escaped(alice_client):
    ran_on(f"{SCRIPT}:1", JobStatus.COMPLETED)
    page = alice_client.get("/health/").content.decode()
    assert SCRIPT not in page and "&lt;script&gt;" in page


@time_machine.travel(NOW, tick=False)
def test_a_worker_value_without_a_pid_is_its_own_host_with_no_process_listed(alice_client):
    ran_on("nocolon", JobStatus.COMPLETED)
    page = alice_client.get("/health/").content.decode()
    row = page.split("<code>nocolon</code>")[1].split("</tr>")[0]
    assert '<td role="cell" class="small" data-label="Processes seen">–</td>' in row and "pid" not in row


@time_machine.travel(NOW, tick=False)
def test_a_node_gone_is_named_on_the_page_escaped(alice_client, no_cluster, settings):
    from monitoring.health import health_service
    from tests.conftest import publish_cluster

    settings.HEALTH = {**settings.HEALTH, "SAMPLE_NODE_RESOURCES": True, "EXPECTED_WORKERS": 4}
    settings.PERIODIC_TASKS = {**settings.PERIODIC_TASKS, "run_health_checks": {"minutes": 1}}
    check(5, "resource", "disk.percent", 40, message=f"disk / 40 % full on {SCRIPT}", host=SCRIPT)
    publish_cluster(workers=2, host="node-a")
    health_service.run_health_checks_sync(resources=False)

    page = alice_client.get("/health/").content.decode()

    row = page.split("<code>cluster.workers</code>")[1].split("</tr>")[0]
    assert "2 of 4 expected workers alive, in 1 cluster on node-a; not seen since 02:55 UTC (5m ago): " in row
    assert "&lt;script&gt;alert(" in row and "<script>alert" not in page
