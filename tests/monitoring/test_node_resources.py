"""Every node samples its own resources each health-check interval (monitoring.sampler), whichever
node the scheduled checks land on: each host shown fresh, each with its own alert."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import DatabaseError, OperationalError

from alerts.models import AlertHistory
from jobs import clock
from monitoring.health import latest_health
from monitoring.models import MetricType, SystemHealthMetric
from monitoring.sampler import NodeResourceSampler
from monitoring.tasks import run_health_checks

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


class Nodes:
    """Several nodes' samplers in this one process, on a clock the test moves: each samples as its
    host (WORKER_HOSTNAME) with its own disk, as each node's pusher would."""

    def __init__(self, machine, settings):
        self.machine, self.settings = machine, settings
        self.elapsed = 0.0  # seconds since NOW, on every node's clock
        self.samplers: dict[str, NodeResourceSampler] = {}

    def at(self, seconds: float):
        self.elapsed = seconds
        return time_machine.travel(NOW + timedelta(seconds=seconds), tick=False)

    def sampler(self, host: str) -> NodeResourceSampler:
        if host not in self.samplers:
            self.samplers[host] = NodeResourceSampler()
            self.samplers[host].clock = lambda: self.elapsed
        return self.samplers[host]

    def tick(self, host: str, disk: float) -> bool:
        self.settings.WORKER_HOSTNAME, self.machine.disk = host, disk
        with self.at(self.elapsed):
            return self.sampler(host).tick()

    def scheduled_checks_on(self, host: str) -> None:
        self.settings.WORKER_HOSTNAME = host
        with self.at(self.elapsed):
            run_health_checks()


@pytest.fixture
def nodes(machine, settings, no_cluster):
    settings.HEALTH = {**settings.HEALTH, "SAMPLE_NODE_RESOURCES": True}  # off in tests/settings.py
    return Nodes(machine, settings)


def disks(health):
    """{host: (status, percent, when)} of each host's disk shown."""
    shown = [c for c in health["components"] if c["metric_name"] == "disk.percent"]
    return {c["host"]: (c["status"], c["metric_value"], c["timestamp"]) for c in shown}


def resource_rows(host):
    return SystemHealthMetric.objects.filter(metric_type=MetricType.RESOURCE, details__host=host)


def test_every_node_is_shown_fresh_and_alerted_on_its_own_whichever_node_runs_the_checks(nodes):
    # The scheduled checks land on node-a every time: node-b's disk fills up all the same.
    for minute, (disk_a, disk_b) in enumerate([(50, 50), (88, 97), (88, 97)]):
        nodes.elapsed = minute * 60
        assert nodes.tick("node-a", disk_a) and nodes.tick("node-b", disk_b)
        nodes.scheduled_checks_on("node-a")

    health = latest_health()
    two_minutes = NOW + timedelta(minutes=2)
    assert {host: status for host, (status, _, _) in disks(health).items()} == {
        "node-a": "warning",
        "node-b": "critical",
    }
    assert all(when == two_minutes for _, _, when in disks(health).values()), "both sampled this minute"
    assert health["checked_at"] == two_minutes
    assert health["status"] == "critical"
    alerts = AlertHistory.objects.filter(alert_type="resource_utilization")
    assert sorted(alerts.values_list("title", flat=True)) == [
        "Resource utilization resource/disk.percent on node-a is warning",
        "Resource utilization resource/disk.percent on node-b is critical",
    ]
    node_b = alerts.get(title__contains="node-b")
    assert node_b.message.endswith("Previously healthy."), "compared with node-b's own previous reading"

    nodes.elapsed = 3 * 60
    nodes.tick("node-b", 40)  # node-b cleaned up; node-a's disk is still filling

    node_b.refresh_from_db()
    assert node_b.resolved_at is not None, "cleared by node-b's own reading"
    assert alerts.get(title__contains="node-a").resolved_at is None


def test_a_node_samples_once_per_health_check_interval(nodes, settings):
    settings.PERIODIC_TASKS = {**settings.PERIODIC_TASKS, "run_health_checks": {"func": "", "minutes": 2}}
    sampled = []
    for second in (0, 1, 60, 119, 120, 121, 240):
        nodes.elapsed = second
        sampled.append(nodes.tick("node-a", 50))
    assert sampled == [True, False, False, False, True, False, True]
    assert resource_rows("node-a").count() == 3 * 3  # cpu, memory and disk, three times


def test_no_sampling_while_the_health_checks_or_the_sampling_are_off(nodes, settings):
    settings.PERIODIC_TASKS = {**settings.PERIODIC_TASKS, "run_health_checks": {"func": "", "minutes": 0}}
    assert not nodes.tick("node-a", 50)
    settings.PERIODIC_TASKS = {**settings.PERIODIC_TASKS, "run_health_checks": {"func": "", "minutes": 1}}
    settings.HEALTH = {**settings.HEALTH, "SAMPLE_NODE_RESOURCES": False}
    assert not nodes.tick("node-b", 50)
    assert not SystemHealthMetric.objects.exists()


def test_a_node_that_stops_stops_reporting_and_is_forgotten_after_forget_after_minutes(nodes, settings):
    settings.HEALTH = {**settings.HEALTH, "FORGET_AFTER_MINUTES": 5}
    shown = {}
    for minute in range(8):
        nodes.elapsed = minute * 60
        nodes.tick("node-a", 50)
        if minute <= 1:  # node-b stops after its sample of minute 1
            nodes.tick("node-b", 50)
        nodes.scheduled_checks_on("node-a")
        shown[minute] = sorted(disks(latest_health()))

    assert resource_rows("node-b").count() == 2 * 3
    assert shown[6] == ["node-a", "node-b"]  # its last reading, 5 min before the latest checks
    assert disks(latest_health())["node-a"][2] == NOW + timedelta(minutes=7)
    assert shown[7] == ["node-a"], "forgotten"


def test_the_sampler_survives_database_errors_and_samples_on(nodes, monkeypatch, caplog):
    real_bulk_create = SystemHealthMetric.objects.bulk_create
    failures = [OperationalError("server closed the connection unexpectedly"), DatabaseError("disk full")]

    def bulk_create(*args, **kwargs):
        if failures:
            raise failures.pop(0)
        return real_bulk_create(*args, **kwargs)

    monkeypatch.setattr(SystemHealthMetric.objects, "bulk_create", bulk_create)

    class Stop(Exception):
        pass

    sleeps = []

    def sleep(seconds):  # a minute passes between ticks; the test ends the loop after three
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise Stop
        nodes.elapsed = nodes.elapsed + 60

    sampler = nodes.sampler("node-a")
    nodes.settings.WORKER_HOSTNAME = "node-a"
    with caplog.at_level(logging.WARNING), pytest.raises(Stop):
        with time_machine.travel(NOW, tick=True):
            sampler.run_forever(sleep=sleep)

    assert not failures, "both failures were met"
    assert "health check results could not be stored" in caplog.text  # the outage
    assert "this node's resources could not be sampled" in caplog.text  # another database error
    assert resource_rows("node-a").count() == 3, "the third sample was stored"


def test_the_scheduled_checks_store_no_resources_the_nodes_do(nodes):
    nodes.scheduled_checks_on("node-a")
    assert SystemHealthMetric.objects.exists()
    assert not SystemHealthMetric.objects.filter(metric_type=MetricType.RESOURCE).exists()

    nodes.tick("node-a", 50)  # the node the checks landed on, the same minute
    assert resource_rows("node-a").count() == 3, "one row per resource for the host and minute"


@pytest.fixture
def clock_from_database(settings):
    settings.JOBS = {**settings.JOBS, "CLOCK_FROM_DATABASE": True}  # off in tests/settings.py
    clock.forget()
    yield
    clock.forget()  # the correction measured against the travelled time stays in this test


def test_on_postgres_each_node_reads_its_own_clock_with_its_resources(postgres_only, clock_from_database, nodes):
    nodes.tick("node-a", 50)
    nodes.scheduled_checks_on("node-a")

    clocks = SystemHealthMetric.objects.filter(metric_name="clock.offset_s")
    assert [(row.metric_type, row.details["host"]) for row in clocks] == [("resource", "node-a")], "the node's, once"
