"""The dashboard's formatting: what an operator reads beside the counts must agree with them, and a
moment reads the same wherever it is shown."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone

from monitoring.templatetags.dashboard import ago, finished_rate, percent, rate, success_percent


@pytest.mark.parametrize(
    ("fraction", "shown"),
    [
        (0.9753, "97.5 %"),
        (1, "100 %"),
        (0, "0 %"),
        (None, "–"),
        (2499 / 2500, "99.96 %"),  # never "100 %" while one failed
        (1 / 2500, "0.04 %"),  # never "0 %" while one did
        (1 - 1e-7, "> 99.99 %"),  # past the digits shown: still not "100 %"
        (1e-7, "< 0.01 %"),
    ],
)
def test_percent_shows_a_share_short_of_all_or_above_none_as_such(fraction, shown):
    assert percent(fraction) == shown


def test_the_success_rate_is_read_from_the_counts_not_the_rounded_ratio():
    # 20,000 completed and 1 failed for good: the API's success_rate (4 places) is 1.0.
    outcomes = {"succeeded": 20_000, "failed": 1, "success_rate": 1.0}

    assert success_percent(outcomes) == "99.995 %"
    assert success_percent({"succeeded": 0, "failed": 0, "success_rate": None}) == "–"


def test_a_moment_shows_how_long_ago_it_was_and_its_date_and_time_in_the_sites_time_zone_on_hover():
    now = datetime(2026, 12, 7, 23, 30, 0, tzinfo=UTC)
    moment = now - timedelta(minutes=3, seconds=5)

    assert ago(moment, now) == (
        '<time datetime="2026-12-07T23:26:55+00:00" title="2026-12-07 23:26:55 UTC">3m 05s ago</time>'
    )
    with timezone.override(ZoneInfo("Europe/Paris")):
        assert ago(moment, now, title="submitted", suffix="") == (
            '<time datetime="2026-12-08T00:26:55+01:00" title="submitted 2026-12-08 00:26:55 CET">3m 05s</time>'
        )
    assert ago(None, now) == "–"  # a moment not reached (a job not started): no <time>, not "now"


def test_a_moment_is_written_as_the_date_filter_writes_it():
    moment = datetime(2026, 7, 1, 8, 5, 9, 123456, tzinfo=UTC)
    now = moment + timedelta(hours=2)
    as_filters = Template(
        "{% load dashboard %}"
        "<time datetime=\"{{ moment|date:'c' }}\" title=\"{{ moment|date:'Y-m-d H:i:s T' }}\">"
        "{{ moment|age:now }} ago</time>"
    )

    for zone in ("UTC", "America/New_York", "Asia/Kolkata"):
        with timezone.override(ZoneInfo(zone)):
            assert ago(moment, now) == as_filters.render(Context({"moment": moment, "now": now}))


@pytest.mark.parametrize(
    ("count", "span", "shown"),
    [
        (120, timedelta(minutes=1), "120 per minute"),
        (90, timedelta(minutes=15), "6.0 per minute"),
        (60, timedelta(hours=1), "1.0 per minute"),  # at least one a minute: per minute
        (59, timedelta(hours=1), "59 per hour"),
        (4, timedelta(hours=1), "4.0 per hour"),
        (77, timedelta(days=1), "3.2 per hour"),
        (24, timedelta(days=1), "1.0 per hour"),
        (159, timedelta(days=30), "5.3 per day"),  # read "0.00 per minute"
        (1, timedelta(days=1), "1.0 per day"),
        (1, timedelta(days=7), "0.1 per day"),
        (1, timedelta(days=30), "< 0.1 per day"),  # never "0" while one did
        (0, timedelta(days=30), "none"),
        (None, timedelta(hours=1), "–"),
    ],
)
def test_a_rate_reads_per_minute_hour_or_day_whichever_reaches_one(count, span, shown):
    assert rate(count, span) == shown


def test_the_rate_of_jobs_finished_is_read_from_the_counts_not_the_rounded_throughput():
    # 3 jobs in 30 days: the API's throughput_per_minute (3 places) is 0.0.
    outcomes = {"succeeded": 1, "failed": 1, "cancelled": 1, "throughput_per_minute": 0.0}

    assert finished_rate(outcomes, "30d") == "0.1 per day"
    assert finished_rate(outcomes, "15m") == "12 per hour"
    assert finished_rate({"succeeded": 0, "failed": 0, "cancelled": 0}, "1h") == "none"
