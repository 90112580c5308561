"""Performance degradation: a job type's recent p95 against its own baseline (the periodic task)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from alerts.models import AlertHistory, AlertType
from alerts.tasks import check_performance
from monitoring.models import EventType
from tests.factories import JobExecutionLogFactory, JobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def runs(job_type, durations_ms, *, hours_ago):
    """Completed attempts of a job type, `hours_ago` before NOW."""
    job = JobFactory(job_type=job_type, completed=True)
    for ms in durations_ms:
        JobExecutionLogFactory(
            job=job,
            event_type=EventType.COMPLETED,
            status="completed",
            execution_time_ms=ms,
            timestamp=NOW - timedelta(hours=hours_ago),
        )


def evaluate():
    with time_machine.travel(NOW, tick=False):
        return check_performance()


def test_a_job_type_three_times_slower_than_its_baseline_raises_a_warning():
    runs("ai_matching", [1000] * 30, hours_ago=6)  # the baseline: 1 s
    runs("ai_matching", [3000] * 6, hours_ago=0.5)  # the last hour: 3 s
    assert evaluate() == 1

    alert = AlertHistory.objects.get()
    assert (alert.alert_type, alert.severity) == (AlertType.PERFORMANCE_DEGRADATION, "warning")
    assert alert.title == "ai_matching jobs are slower than usual"
    assert alert.message == (
        "ai_matching: p95 3.00s over the last 60 min (6 runs), 3.0x its 24h baseline of 1.00s (30 runs)."
    )
    assert alert.state.job_type == "ai_matching" and alert.job_id is None
    assert alert.state.details["ratio"] == 3.0


@pytest.mark.parametrize(
    "baseline, recent, why",
    [
        ([1000] * 30, [1500] * 6, "only 1.5x slower"),
        ([10] * 30, [50] * 6, "5x, but 40 ms slower is noise"),
        ([1000] * 30, [3000] * 4, "too few recent runs"),
        ([1000] * 10, [3000] * 6, "too short a baseline"),
    ],
)
def test_no_alert_without_enough_evidence(baseline, recent, why):
    runs("ai_matching", baseline, hours_ago=6)
    runs("ai_matching", recent, hours_ago=0.5)
    assert evaluate() == 0, why
    assert not AlertHistory.objects.exists()


def test_runs_older_than_the_baseline_window_do_not_count():
    runs("ai_matching", [3000] * 100, hours_ago=30)  # slow, but before the 24 h baseline
    runs("ai_matching", [1000] * 30, hours_ago=6)
    runs("ai_matching", [3000] * 6, hours_ago=0.5)
    assert evaluate() == 1
    assert AlertHistory.objects.get().state.details["baseline"]["count"] == 30


def test_thresholds_are_configurable(alert_settings):
    alert_settings["RULES"] = {"performance_degradation": {"ratio": 1.4, "min_increase_ms": 100, "severity": "error"}}
    runs("ai_matching", [1000] * 30, hours_ago=6)
    runs("ai_matching", [1500] * 6, hours_ago=0.5)
    assert evaluate() == 1
    assert AlertHistory.objects.get().severity == "error"


def test_each_evaluation_while_slow_counts_and_back_to_normal_resolves():
    runs("ai_matching", [1000] * 30, hours_ago=6)
    runs("ai_matching", [3000] * 6, hours_ago=0.5)
    evaluate()
    evaluate()
    alert = AlertHistory.objects.get()
    assert alert.state.occurrences == 2

    runs("ai_matching", [1000] * 200, hours_ago=0.25)  # the last hour's p95 is back to 1 s
    assert evaluate() == 0
    alert.refresh_from_db()
    assert alert.resolved_at == NOW
    assert alert.state.resolution_reason.startswith("Auto-resolved: p95 1.00s over the last 60 min (206 runs)")


def test_the_rule_can_be_switched_off(alert_settings):
    alert_settings["RULES"] = {"performance_degradation": {"enabled": False}}
    runs("ai_matching", [1000] * 30, hours_ago=6)
    runs("ai_matching", [3000] * 6, hours_ago=0.5)
    assert evaluate() == 0
    assert not AlertHistory.objects.exists()
