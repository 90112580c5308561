"""JOBS_TYPES (per job type retries and timeout, .env.example) is checked at start: a wrong value is
refused by `manage.py check` (and every command: migrate, qcluster, runserver), not met by each submit."""

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
