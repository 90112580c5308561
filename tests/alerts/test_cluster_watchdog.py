"""manage.py cluster_watchdog: the dead man's switch that cron runs outside every django-q2 cluster.

No cluster runs in these tests and no django-q2 task is executed: whatever is sent, the
watchdog sent itself.
"""

import os
from datetime import UTC, datetime, timedelta
from io import StringIO
from urllib.parse import urlsplit

import pytest
import redis
import time_machine
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from alerts.models import AlertHistory, AlertState, DeliveryStatus, NotificationDelivery
from alerts.services import deliveries_send_due
from jobs.models import JobStatus
from monitoring.health import component_key
from monitoring.models import MetricType
from tests.conftest import publish_cluster
from tests.factories import JobFactory, SystemHealthMetricFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def stale_after_three_minutes(settings, no_cluster):
    settings.HEALTH = {**settings.HEALTH, "STALE_AFTER_MINUTES": 3}


@pytest.fixture
def redis_broker_at(monkeypatch):
    """Make the clusters' broker Redis at the URL given (whatever answers there, or nothing)."""
    from django_q.conf import Conf

    def at(url: str) -> None:
        monkeypatch.setattr(Conf, "BROKER_CLASS", "jobs.brokers.RedisBroker")
        monkeypatch.setattr(Conf, "REDIS", url)

    return at


def assert_broker_unreachable_alert_sent_without_password(output: str, title_start: str) -> AlertHistory:
    """The alert names the broker as the cause, keeps the URL's password out of every text the
    watchdog writes, and still reaches its two recipients (sending needs no broker)."""
    alert = AlertHistory.objects.get()
    assert alert.title.startswith(title_start)
    assert "s3cret" not in alert.message + str(AlertState.objects.get().details) + output
    assert len(mail.outbox) == 2
    return alert


def workers_seen(at, status="healthy", workers=2):
    """A stored cluster.workers reading, as the scheduled health check writes it."""
    return SystemHealthMetricFactory(
        timestamp=at,
        metric_type=MetricType.JOB_QUEUE,
        metric_name="cluster.workers",
        metric_value=workers,
        status=status,
        details={"message": f"{workers} workers in 1 cluster on vm-1"},
    )


def queued_since(at, count=4):
    return [JobFactory(status=JobStatus.QUEUED, updated_at=at + timedelta(seconds=i)) for i in range(count)]


def alert_raised_at(at, alert_type="job_failure", severity="error", data=None):
    """An alert a rule raised at `at` (before the cluster died, say)."""
    from alerts.manager import alert_manager

    with time_machine.travel(at, tick=False):
        return alert_manager.process_alert_sync(
            alert_type, severity, data or {"title": "imports failed", "message": "m"}
        )


def watchdog(at) -> tuple[int, str]:
    """Run the command at `at`: its exit status and what it printed."""
    out, err = StringIO(), StringIO()
    with time_machine.travel(at, tick=False):
        try:
            call_command("cluster_watchdog", stdout=out, stderr=err)
        except CommandError as e:
            return e.returncode, str(e)
    return 0, out.getvalue()


def test_no_worker_seen_raises_one_critical_alert_and_sends_it_without_a_cluster():
    workers_seen(NOW - timedelta(minutes=10))
    queued_since(NOW - timedelta(minutes=8))

    status, output = watchdog(NOW)

    assert status == 1
    assert "no worker cluster is running: a worker was last seen 600s ago; 4 jobs queued since" in output
    alert = AlertHistory.objects.get()
    assert (alert.alert_type, alert.severity) == ("system_health", "critical")
    assert alert.title == "No worker cluster has run for 10 min; 4 jobs waiting since 02:52 UTC"
    assert "No django-q2 worker has been seen since 2026-11-29 02:50:00 UTC (10 min)" in alert.message
    assert "4 jobs queued, the oldest since 2026-11-29 02:52 UTC." in alert.message
    assert AlertState.objects.get().fingerprint == "system_health:job_queue/cluster.workers"
    # Delivered by the command itself, to the critical recipients.
    assert sorted(m.to[0] for m in mail.outbox) == ["oncall@example.com", "ops@example.com"]
    assert mail.outbox[0].subject == f"[CRITICAL] New alert: {alert.title}"
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    alert.refresh_from_db()
    assert alert.notification_sent is True


def test_while_no_cluster_runs_it_escalates_and_delivers_every_alert_not_only_its_own():
    # Raised by the job rule just before the cluster died; its email never went out.
    job_alert = alert_raised_at(NOW - timedelta(minutes=70))
    workers_seen(NOW - timedelta(minutes=10))

    assert watchdog(NOW)[0] == 1

    sent = sorted((m.to[0], m.subject) for m in mail.outbox)
    assert ("ops@example.com", "[ERROR] New alert: imports failed") in sent  # the stranded one
    assert ("lead@example.com", "[ERROR] Escalated: unresolved for 70 min: imports failed") in sent  # due after 60
    job_alert.refresh_from_db()
    assert job_alert.escalated is True and job_alert.notification_sent is True
    assert not NotificationDelivery.objects.filter(status=DeliveryStatus.PENDING).exists()


def test_a_second_run_counts_into_the_open_alert_and_sends_nothing_again():
    workers_seen(NOW - timedelta(minutes=10))

    assert watchdog(NOW)[0] == 1
    assert watchdog(NOW + timedelta(minutes=1))[0] == 1

    state = AlertState.objects.get()
    assert state.occurrences == 2 and state.is_open
    assert state.error_summary == "No worker cluster has run for 11 min; no job queued"
    assert len(mail.outbox) == 2  # one per recipient, from the first run
    # What a second watchdog running at the same moment would try: the claims are taken.
    assert deliveries_send_due(alert_id=state.alert_id) == []


def test_it_resolves_the_alert_and_says_so_once_a_worker_is_seen_again(alert_settings, webhook_server):
    alert_settings["RECIPIENTS"]["critical"] = [f"{webhook_server.url}/hooks/oncall"]
    workers_seen(NOW - timedelta(minutes=10))
    assert watchdog(NOW)[0] == 1

    workers_seen(NOW + timedelta(minutes=2))  # a cluster is back and its check ran
    status, output = watchdog(NOW + timedelta(minutes=2, seconds=10))

    assert status == 0 and output.endswith("alive: a worker was last seen 10s ago; no job queued\n")
    alert = AlertHistory.objects.get()
    assert alert.resolved_at == NOW + timedelta(minutes=2, seconds=10)
    assert AlertState.objects.get().resolution_reason == "Auto-resolved: a worker was seen at 03:02:00 UTC."
    assert [(r["json"]["event"], r["json"]["headline"]) for r in webhook_server.requests] == [
        ("alert", "New alert"),
        ("resolved", "Resolved"),
    ]
    # Alive from now on: nothing more is raised or sent.
    assert watchdog(NOW + timedelta(minutes=3))[0] == 0
    assert AlertHistory.objects.count() == 1 and len(webhook_server.requests) == 2


def test_a_flapping_cluster_keeps_its_reopened_alert_open_until_workers_were_seen_for_the_flap_window():
    """As every rule's (FLAP_MINUTES is 15 here): a cluster dying again within it reopens the
    alert, which then stays open until no worker has been missed for 15 minutes."""
    workers_seen(NOW - timedelta(minutes=10))
    assert watchdog(NOW)[0] == 1
    workers_seen(NOW + timedelta(minutes=2))
    assert watchdog(NOW + timedelta(minutes=2, seconds=10))[0] == 0  # its first clear: resolved
    assert watchdog(NOW + timedelta(minutes=8))[0] == 1  # dead again: reopened
    workers_seen(NOW + timedelta(minutes=9))

    assert watchdog(NOW + timedelta(minutes=9, seconds=10))[0] == 0
    state = AlertState.objects.get()
    assert (state.is_open, state.reopened) == (True, 1)  # flapping: not resolved at the first worker seen

    workers_seen(NOW + timedelta(minutes=23))
    assert watchdog(NOW + timedelta(minutes=23, seconds=10))[0] == 0  # last missed at 03:08: 15 min clear
    state.refresh_from_db()
    assert not state.is_open and state.alert.resolved_at == NOW + timedelta(minutes=23, seconds=10)
    assert AlertHistory.objects.count() == 1


def no_cluster_found_by_a_health_check(at):
    """A health check run while no cluster runs (by hand, or a cron'd run_health_checks): its
    cluster.workers reading is critical, and the alert rules judge it."""
    from alerts.manager import alert_manager

    with time_machine.travel(at, tick=False):
        alert_manager.handle_health_checked([workers_seen(at, status="critical", workers=0)])


def pages() -> list[tuple[str, str]]:
    return sorted(NotificationDelivery.objects.values_list("headline", "recipient"))


def test_a_health_check_that_found_no_cluster_and_the_watchdog_page_once_for_one_outage():
    """Drill: with the clusters stopped, a health check raised "cluster.workers is critical" and the
    watchdog "No worker cluster has run" beside it: two alerts and two pages for one outage."""
    workers_seen(NOW - timedelta(minutes=10))
    no_cluster_found_by_a_health_check(NOW - timedelta(minutes=1))

    assert watchdog(NOW)[0] == 1

    state = AlertState.objects.get()
    assert state.occurrences == 2 and state.alert.title == "Health check job_queue/cluster.workers is critical"
    assert state.error_summary == "No worker cluster has run for 10 min; no job queued"  # the latest reading
    assert pages() == [("New alert", "oncall@example.com"), ("New alert", "ops@example.com")]


def test_after_the_watchdogs_alert_a_health_check_finding_no_cluster_counts_into_it_and_a_healthy_one_resolves_it():
    from alerts.manager import alert_manager

    workers_seen(NOW - timedelta(minutes=10))
    assert watchdog(NOW)[0] == 1
    no_cluster_found_by_a_health_check(NOW + timedelta(minutes=1))

    state = AlertState.objects.get()
    assert state.occurrences == 2 and state.alert.title.startswith("No worker cluster has run for 10 min")
    assert pages() == [("New alert", "oncall@example.com"), ("New alert", "ops@example.com")]

    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):  # a cluster is back: its first check
        alert_manager.handle_health_checked([workers_seen(NOW + timedelta(minutes=2))])
    state.refresh_from_db()
    assert not state.is_open
    assert state.resolution_reason.startswith("Auto-resolved: job_queue/cluster.workers = 2 (healthy)")
    assert watchdog(NOW + timedelta(minutes=2, seconds=10))[0] == 0
    assert AlertHistory.objects.count() == 1


def test_an_alert_the_watchdog_raised_under_its_old_check_name_is_resolved_once_a_worker_is_seen():
    old = alert_raised_at(
        NOW - timedelta(minutes=10),
        "system_health",
        "critical",
        {"check": "cluster.watchdog", "title": "No worker cluster has run for 5 min"},
    )
    workers_seen(NOW - timedelta(minutes=1))

    assert watchdog(NOW)[0] == 0

    old.refresh_from_db()
    assert old.resolved_at == NOW


def test_does_nothing_while_a_worker_is_seen():
    workers_seen(NOW - timedelta(minutes=1))
    queued_since(NOW - timedelta(minutes=1))

    status, output = watchdog(NOW)
    assert status == 0
    assert output == "alive: a worker was last seen 60s ago; 4 jobs queued since 2026-11-29 02:59:00 UTC\n"
    assert not AlertHistory.objects.exists() and not mail.outbox


def test_workers_busy_with_long_jobs_are_alive_and_it_runs_the_checks_they_keep_waiting():
    """Every worker on a long job: the scheduled checks, escalations and notifications wait in
    the queue for one. Alive, and the watchdog does that work meanwhile."""
    from monitoring.models import SystemHealthMetric

    publish_cluster(workers=2, status="Working", host="vm-1")
    workers_seen(NOW - timedelta(minutes=20))
    JobFactory(running=True, heartbeat_at=NOW - timedelta(seconds=5))
    alert_raised_at(NOW - timedelta(minutes=70))

    status, output = watchdog(NOW)

    assert status == 0
    assert "health checks overdue (they last ran 20m 00s ago: every worker busy?): run here" in output
    cluster = SystemHealthMetric.objects.filter(metric_name="cluster.workers").latest("timestamp")
    assert (cluster.timestamp, cluster.status) == (NOW, "healthy")
    # Not this machine's resources: no worker node, it would be named gone once its readings stopped.
    assert not SystemHealthMetric.objects.filter(metric_type=MetricType.RESOURCE).exists()
    assert not AlertState.objects.filter(fingerprint="system_health:job_queue/cluster.workers").exists()
    sent = sorted((m.to[0], m.subject) for m in mail.outbox)
    assert ("ops@example.com", "[ERROR] New alert: imports failed") in sent
    assert ("lead@example.com", "[ERROR] Escalated: unresolved for 70 min: imports failed") in sent


def test_checks_on_time_are_left_to_the_workers():
    from monitoring.models import SystemHealthMetric

    workers_seen(NOW - timedelta(minutes=2))

    assert watchdog(NOW)[1].startswith("alive: ")
    assert SystemHealthMetric.objects.count() == 1


def test_a_check_run_by_hand_while_no_cluster_runs_is_not_a_worker():
    workers_seen(NOW - timedelta(minutes=10))
    workers_seen(NOW - timedelta(seconds=20), status="critical", workers=0)  # manage.py run_health_checks

    status, _ = watchdog(NOW)

    assert status == 1
    assert AlertHistory.objects.get().title == "No worker cluster has run for 10 min"


def test_a_system_where_no_worker_was_ever_seen_is_dead():
    queued_since(NOW - timedelta(minutes=1), count=1)

    assert watchdog(NOW)[0] == 1
    alert = AlertHistory.objects.get()
    assert alert.title == "No worker cluster has been seen; 1 job waiting since 02:59 UTC"
    assert "; 1 job queued since 2026-11-29 02:59 UTC." in alert.message  # one job: no "the oldest"


def test_refuses_to_judge_when_staleness_is_off(settings):
    settings.HEALTH = {**settings.HEALTH, "STALE_AFTER_MINUTES": 0}
    status, message = watchdog(NOW)
    assert status == 2 and "HEALTH_STALE_AFTER_MINUTES is 0" in message
    assert not AlertHistory.objects.exists()


def test_a_send_cut_short_when_the_cluster_died_is_taken_back_and_sent_by_a_later_run():
    alert = alert_raised_at(NOW - timedelta(minutes=12))
    # Its worker claimed it, then died with the cluster mid-send.
    NotificationDelivery.objects.filter(alert=alert).update(
        status=DeliveryStatus.SENDING, attempts=1, claimed_at=NOW - timedelta(minutes=11)
    )
    workers_seen(NOW - timedelta(minutes=10))

    assert watchdog(NOW)[0] == 1
    delivery = NotificationDelivery.objects.get(alert=alert)
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_error.startswith("attempt 1: interrupted")

    assert watchdog(NOW + timedelta(minutes=2))[0] == 1  # past its backoff
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert ("ops@example.com", "[ERROR] New alert: imports failed") in [(m.to[0], m.subject) for m in mail.outbox]


# --- what the broker says: why no worker is seen ----------------------------------------


def test_with_no_cluster_registered_with_the_broker_it_says_to_start_one():
    workers_seen(NOW - timedelta(minutes=10))

    status, output = watchdog(NOW)

    assert status == 1 and output.endswith("; 0 clusters registered with the broker (the database, ORM broker)")
    alert = AlertHistory.objects.get()
    assert alert.title == "No worker cluster has run for 10 min"
    assert (
        "No cluster is registered with the broker (the database, ORM broker). "
        "Start a cluster: python manage.py qcluster." in alert.message
    )


def test_clusters_registered_but_silent_are_named_as_probably_stuck():
    workers_seen(NOW - timedelta(minutes=10))
    publish_cluster(workers=2, host="vm-1")  # its monitor runs; its checks and jobs do not

    assert watchdog(NOW)[0] == 1

    alert = AlertHistory.objects.get()
    assert alert.title == "No worker cluster has run for 10 min (1 cluster registered but silent)"
    assert "1 cluster with 2 workers is registered with the broker (the database, ORM broker) on vm-1" in (
        alert.message
    )
    assert "Read its logs and restart it." in alert.message
    assert "Start a cluster" not in alert.message


def test_a_redis_broker_that_answers_with_no_cluster_is_named_by_its_address(redis_broker_at):
    from django_q.conf import Conf

    url = os.environ.get("REDIS_TEST_URL")
    if not url:
        pytest.skip("set REDIS_TEST_URL=redis://… to ask a real Redis broker too")
    redis_broker_at(url)
    stats = redis.from_url(url)
    for key in stats.keys(f"{Conf.Q_STAT}:*"):  # a cluster another test ran on this Redis moments ago
        stats.delete(key)
    workers_seen(NOW - timedelta(minutes=10))

    assert watchdog(NOW)[0] == 1
    parts = urlsplit(url)
    expected = f"No cluster is registered with the broker (Redis at {parts.hostname}:{parts.port or 6379})."
    assert expected in AlertHistory.objects.get().message


def test_a_broker_that_does_not_answer_is_named_as_the_cause_without_its_password(redis_broker_at):
    redis_broker_at("redis://:s3cret@127.0.0.1:1/0")  # nothing listens: a real refused connection
    workers_seen(NOW - timedelta(minutes=10))
    queued_since(NOW - timedelta(minutes=8), count=1)

    status, output = watchdog(NOW)

    assert status == 1
    assert "the broker (Redis at 127.0.0.1:1) does not answer: ConnectionError" in output
    alert = assert_broker_unreachable_alert_sent_without_password(output, "No worker cluster has run for 10 min")
    assert alert.title == "No worker cluster has run for 10 min (broker unreachable); 1 job waiting since 02:52 UTC"
    assert "The broker (Redis at 127.0.0.1:1) does not answer: ConnectionError: " in alert.message
    assert "bring the broker back (or fix REDIS_URL)" in alert.message
    assert AlertState.objects.get().error_summary.startswith(
        "No worker cluster has run for 10 min (broker unreachable)"
    )


def test_a_database_that_does_not_answer_is_one_line_and_an_exit_status_of_its_own(postgres_only, transactional_db):
    from tests.reliability.faults import database_unreachable

    with database_unreachable():
        status, message = watchdog(NOW)

    assert status == 3
    assert message.startswith("database error, this run stopped there: OperationalError: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret/x@127.0.0.1:6379/0",  # an unencoded '/': urllib reads 's3cret' as the port
        "redis://:s3cret@127.0.0.1:notaport/0",
        "http://:s3cret@127.0.0.1:6379/0",  # not a scheme redis-py takes
    ],
)
def test_a_redis_url_that_does_not_parse_still_raises_and_sends_the_alert(redis_broker_at, url):
    """No cluster can start on such a URL, so the watchdog is the only one left to say so."""
    redis_broker_at(url)
    workers_seen(NOW - timedelta(minutes=10))

    status, output = watchdog(NOW)

    assert status == 1
    assert "does not answer: ValueError setting up the broker: is REDIS_URL a valid redis:// URL?" in output
    assert_broker_unreachable_alert_sent_without_password(
        output, "No worker cluster has run for 10 min (broker unreachable)"
    )


def test_a_warning_of_fewer_workers_than_expected_is_the_health_checks_to_clear_not_the_watchdogs(alert_settings):
    """A node gone with HEALTH_EXPECTED_WORKERS set: the check raises its warning under the same
    fingerprint as the watchdog's alert. A worker seen is no reason to resolve it: the watchdog did,
    and the next check reopened it ("New alert", "Resolved", "Flapping: back …" for one node gone)."""
    from alerts.manager import alert_manager

    alert_settings["RECIPIENTS"]["warning"] = ["oncall@example.com"]
    before = {component_key(MetricType.JOB_QUEUE, "cluster.workers", {}): "warning"}  # found at the check before
    for minute in range(3):  # each minute a check finds 6 of 8 workers, then cron runs the watchdog
        at = NOW + timedelta(minutes=minute)
        with time_machine.travel(at, tick=False):
            alert_manager.handle_health_checked([workers_seen(at, status="warning", workers=6)], before)
        assert watchdog(at + timedelta(seconds=10))[0] == 0

    state = AlertState.objects.get()
    assert state.is_open and state.occurrences == 3
    assert list(NotificationDelivery.objects.order_by("created_at").values_list("headline", flat=True)) == ["New alert"]

    with time_machine.travel(NOW + timedelta(minutes=3), tick=False):  # the node is back
        alert_manager.handle_health_checked([workers_seen(NOW + timedelta(minutes=3), workers=8)])
    state.refresh_from_db()
    assert not state.is_open


def test_the_no_worker_alert_resolves_once_workers_run_even_fewer_than_expected_and_a_node_short_alerts_apart(
    settings, alert_settings
):
    """Every node died, three of four came back (6 of 8 workers): the critical "No worker cluster
    has run…" stayed open, the checks' warnings counted into it, until the fourth was back."""
    from monitoring.health import health_service
    from tests.conftest import forget_clusters

    settings.HEALTH = {**settings.HEALTH, "EXPECTED_WORKERS": 8}
    settings.PERIODIC_TASKS = {**settings.PERIODIC_TASKS, "run_health_checks": {"minutes": 1}}
    workers_seen(NOW - timedelta(minutes=10))  # healthy, before every node died
    queued_since(NOW - timedelta(minutes=8))
    assert watchdog(NOW)[0] == 1
    no_worker = AlertHistory.objects.get()
    assert (no_worker.severity, no_worker.title[:32]) == ("critical", "No worker cluster has run for 10")

    for minute in (1, 2):  # three nodes back; each minute the scheduled check, then the watchdog
        at = NOW + timedelta(minutes=minute)
        with time_machine.travel(at, tick=False):
            forget_clusters()
            for host in ("node-a", "node-b", "node-c"):
                publish_cluster(workers=2, host=host)
            health_service.run_health_checks_sync(resources=False)
        assert watchdog(at + timedelta(seconds=30))[0] == 0
        no_worker.refresh_from_db()
        assert no_worker.resolved_at == NOW + timedelta(minutes=1, seconds=30)

    assert no_worker.state.resolution_reason == "Auto-resolved: a worker was seen at 03:01:00 UTC."
    # The second check still short (confirmed): an alert of its own, not the critical one reopened.
    short = AlertHistory.objects.exclude(id=no_worker.id).get(title__contains="cluster.workers")
    assert (short.severity, short.title, short.resolved_at) == (
        "warning",
        "Health check job_queue/cluster.workers is warning",
        None,
    )
    assert "6 of 8 expected workers alive" in short.message
