"""Job types that must complete regularly (HEALTH_EXPECTED_JOBS): a nightly import that stopped
running fails nothing, so only its silence can be noticed. Late past its period, missed past twice."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from alerts.models import AlertHistory
from monitoring.checks import health_settings
from monitoring.health import health_service
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
NIGHTLY = "jobs.imports.candidates.last_completed_age_s"


@pytest.fixture
def expected(settings):
    def expect(**minutes_by_job_type):
        settings.HEALTH = {**settings.HEALTH, "EXPECTED_JOBS": minutes_by_job_type}

    expect(**{"imports.candidates": 1440})  # once a day
    return expect


def completed(job_type: str, hours_ago: float, **fields):
    return JobFactory(job_type=job_type, completed=True, finished_at=NOW - timedelta(hours=hours_ago), **fields)


def check() -> dict:
    with time_machine.travel(NOW, tick=False):
        return {c["metric_name"]: c for c in health_service.check_expected_jobs_sync()["components"]}


@pytest.mark.parametrize(
    "hours_ago, status, message",
    [
        (20, "healthy", "the last imports.candidates job completed 20h 00m ago (expected every 1d 0h)"),
        (30, "warning", "late: the last imports.candidates job completed 1d 6h ago, expected every 1d 0h"),
        (
            50,
            "critical",
            "missed: the last imports.candidates job completed 2d 2h ago, expected every 1d 0h; "
            "is it still scheduled, and do its runs fail?",
        ),
    ],
)
def test_the_time_since_the_last_completed_run_is_graded_against_its_period(expected, hours_ago, status, message):
    last = completed("imports.candidates", hours_ago)
    completed("imports.candidates", hours_ago + 24)
    # Failures and runs still going are not completions: they keep nobody from noticing.
    JobFactory(job_type="imports.candidates", failed=True, finished_at=NOW - timedelta(hours=1))
    JobFactory(job_type="imports.candidates", running=True)
    completed("reports.daily", 1)  # another type

    nightly = check()[NIGHTLY]

    assert (nightly["status"], nightly["details"]["message"]) == (status, message)
    assert nightly["metric_value"] == hours_ago * 3600
    assert nightly["details"]["last_job_id"] == str(last.id)
    assert nightly["details"]["job_type"] == "imports.candidates"


def test_a_job_type_that_never_completed_is_a_warning_not_a_page(expected):
    JobFactory(job_type="imports.candidates", failed=True, finished_at=NOW)
    nightly = check()[NIGHTLY]
    assert (nightly["status"], nightly["metric_value"]) == ("warning", 0)
    assert nightly["details"]["message"] == "no imports.candidates job has completed yet; one is expected every 1d 0h"


def test_each_expected_job_type_is_its_own_component_in_one_query_each(expected, django_assert_max_num_queries):
    expected(**{"imports.candidates": 1440, "reports.daily": 60})
    for hours in range(50):
        completed("imports.candidates", hours)
    completed("reports.daily", 0.5)

    # one query per job type, the paused ones; on Postgres the statement timeout, its savepoint, its release
    with django_assert_max_num_queries(6):
        components = check()

    assert set(components) == {NIGHTLY, "jobs.reports.daily.last_completed_age_s"}
    assert components["jobs.reports.daily.last_completed_age_s"]["status"] == "healthy"


def test_a_missed_run_raises_a_health_alert_that_the_next_completion_resolves(expected, machine, no_cluster):
    completed("imports.candidates", 50)
    with time_machine.travel(NOW, tick=False):
        health_service.run_health_checks_sync()

    alert = AlertHistory.objects.get(title__contains=NIGHTLY)
    assert (alert.alert_type, alert.severity) == ("system_health", "critical")
    assert "missed: the last imports.candidates job completed 2d 2h ago" in alert.message

    completed("imports.candidates", 0.1)
    with time_machine.travel(NOW, tick=False):
        health_service.run_health_checks_sync()
    alert.refresh_from_db()
    assert alert.resolved_at == NOW


def test_a_paused_expected_job_type_says_why_it_is_late(expected):
    from jobs.manager import job_manager

    completed("imports.candidates", 30)
    job_manager.pause_job_type_sync("imports.candidates", by="alice")
    nightly = check()[NIGHTLY]
    assert nightly["status"] == "warning"  # still late: someone has to resume it
    assert nightly["details"]["message"].endswith("expected every 1d 0h; imports.candidates is paused, its jobs wait")


def test_without_expected_job_types_the_check_adds_nothing(settings):
    settings.HEALTH = {**settings.HEALTH, "EXPECTED_JOBS": {}}
    assert check() == {}


@pytest.mark.parametrize(
    "configured, error",
    [
        ([], 'HEALTH_EXPECTED_JOBS must be a JSON object {"job type": minutes}'),
        ({"imports": 0}, "HEALTH_EXPECTED_JOBS['imports'] must be a number of minutes above 0, at most 527040"),
        ({"imports": "daily"}, "HEALTH_EXPECTED_JOBS['imports'] must be a number of minutes above 0"),
        ({"imports": True}, "HEALTH_EXPECTED_JOBS['imports'] must be a number of minutes above 0"),
        ({"x" * 75: 60}, "a job type name is 1 to 74 printable characters here"),
        ({"a\nb": 60}, "a job type name is 1 to 74 printable characters here"),
        ({" ai_matching": 60}, "a job type name does not begin or end with a space"),
    ],
)
def test_a_wrong_setting_is_refused_by_manage_py_check(settings, configured, error):
    settings.HEALTH = {**settings.HEALTH, "EXPECTED_JOBS": configured}
    [found] = health_settings(None)
    assert found.id == "monitoring.E002" and error in found.msg


def test_the_health_page_links_the_job_types_runs_and_its_last_completed_job(expected, client, alice, no_cluster):
    last = completed("imports.candidates", 30)
    client.force_login(alice)
    with time_machine.travel(NOW, tick=False):
        health_service.run_health_checks_sync()
        page = client.get("/health/").content.decode()

    row = page.split(f"<code>{NIGHTLY}</code>")[1].split("</tr>")[0]
    assert "badge-warning" in row and "1d 6h" in row  # the value, as a duration
    assert '<a href="/jobs/?view=finished&amp;job_type=imports.candidates&amp;window=7d">its runs →</a>' in row
    assert f'<a href="/jobs/{last.id}/">the last completed →</a>' in row
