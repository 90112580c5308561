"""outcome_summary: the overview's outcome counts, the same as performance_metrics', in one query."""

import pytest

from monitoring.metrics import UnknownTimeframe, outcome_summary, performance_metrics
from tests.monitoring.test_performance_metrics import NOW, history  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def test_counts_outcomes_as_performance_metrics_does(history, django_assert_num_queries):  # noqa: F811
    with django_assert_num_queries(1):
        summary = outcome_summary("1h", now=NOW)

    overall = performance_metrics("1h", now=NOW)["overall"]
    keys = ("succeeded", "failed", "failed_attempts", "cancelled", "success_rate", "throughput_per_minute")
    assert {key: summary[key] for key in keys} == {key: overall[key] for key in keys}
    assert (summary["succeeded"], summary["failed"], summary["cancelled"]) == (4, 2, 1)
    assert summary["until"] == NOW and summary["since"] == NOW.replace(hour=2)


def test_an_empty_window_has_no_success_rate():
    summary = outcome_summary("15m", now=NOW)
    assert summary["success_rate"] is None and summary["throughput_per_minute"] == 0


def test_refuses_an_unknown_timeframe():
    with pytest.raises(UnknownTimeframe):
        outcome_summary("2h")
