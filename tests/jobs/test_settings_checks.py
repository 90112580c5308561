"""The jobs' settings are checked at start: `manage.py check` (and every command: migrate, qcluster,
runserver) refuses a wrong JOBS_TYPES (jobs.E001) or a timing that cannot work (jobs.E002), instead of
each submit failing on it or a thread spinning on it."""

import pytest
from django.core.checks import run_checks


def job_checks():
    return [problem for problem in run_checks() if problem.id.startswith("jobs.")]


@pytest.mark.parametrize(
    "configured, error",
    [
        ([1], "JOBS_TYPES must be a JSON object of objects"),
        ({"demo.sleep": 5}, "JOBS_TYPES must be a JSON object of objects"),
        ({"demo.sleep": {"max_attempt": 5}}, "JOBS_TYPES['demo.sleep']: unknown setting 'max_attempt'; known: "),
        ({"demo.sleep": {"timeout": "soon"}}, "JOBS_TYPES['demo.sleep']['timeout'] must be a number of at least 1"),
        (
            {"demo.sleep": {"max_attempts": 0}},
            "JOBS_TYPES['demo.sleep']['max_attempts'] must be a number of at least 1",
        ),
        ({"demo.sleep": {"base_delay": -1}}, "JOBS_TYPES['demo.sleep']['base_delay'] must be a number of at least 0"),
        ({"demo.sleep": {"max_delay": True}}, "JOBS_TYPES['demo.sleep']['max_delay'] must be a number of at least 0"),
    ],
)
def test_a_wrong_setting_is_refused_by_manage_py_check(settings, configured, error):
    settings.JOBS = {**settings.JOBS, "TYPES": configured}

    [found] = job_checks()

    assert found.id == "jobs.E001" and error in found.msg


def test_the_documented_example_passes(settings):
    example = {"ai_matching": {"max_attempts": 5, "base_delay": 2, "max_delay": 600, "timeout": 120}}
    settings.JOBS = {**settings.JOBS, "TYPES": example}

    assert job_checks() == []


@pytest.mark.parametrize(
    "changed, error",
    [
        # A heartbeat thread per running job would write to the database without a pause.
        ({"HEARTBEAT_INTERVAL": 0}, "JOBS_HEARTBEAT_INTERVAL must be above 0, not 0"),
        # So would each node's dispatch-and-sweep thread.
        ({"DISPATCH_INTERVAL": 0}, "JOBS_DISPATCH_INTERVAL must be above 0, not 0"),
        ({"SWEEP_INTERVAL": -1}, "JOBS_SWEEP_INTERVAL must be above 0, not -1"),
        ({"DEFAULT_TIMEOUT": 0}, "JOBS_DEFAULT_TIMEOUT must be above 0, not 0"),
        # Every sweep would take live jobs back from their workers.
        (
            {"STALE_AFTER": 5, "HEARTBEAT_INTERVAL": 5},
            "JOBS_STALE_AFTER (5 s) must be longer than JOBS_HEARTBEAT_INTERVAL",
        ),
        (
            {"RETRY": {"max_attempts": 0, "base_delay": 1, "max_delay": 300}},
            "JOBS_RETRY_MAX_ATTEMPTS must be at least 1",
        ),
        ({"RETRY": {"max_attempts": 3, "base_delay": -1, "max_delay": 300}}, "JOBS_RETRY_BASE_DELAY must be 0 or more"),
    ],
)
def test_a_timing_that_would_spin_or_take_live_jobs_back_is_refused(settings, changed, error):
    settings.JOBS = {**settings.JOBS, **changed}

    [found] = job_checks()

    assert found.id == "jobs.E002" and error in found.msg


def test_the_default_timings_pass(settings):
    from config.settings import JOBS

    settings.JOBS = JOBS

    assert job_checks() == []
