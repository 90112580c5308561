"""manage.py run_health_checks: runs, stores, prints a table worst first."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from monitoring.models import SystemHealthMetric
from tests.conftest import publish_cluster

pytestmark = pytest.mark.django_db


def run(*args) -> list[str]:
    out = StringIO()
    call_command("run_health_checks", *args, stdout=out)
    return out.getvalue().splitlines()


def test_prints_every_component_worst_first_and_the_overall_status(machine, no_cluster):
    machine.disk = 90.0
    lines = run()

    assert lines[0].split() == ["STATUS", "TYPE", "COMPONENT", "VALUE", "MESSAGE"]
    assert lines[1].split()[:3] == ["critical", "job_queue", "cluster.workers"]
    assert lines[1].endswith("no django-q2 cluster is running: jobs will not start")
    assert lines[2].split()[:4] == ["warning", "resource", "disk.percent", "90"]
    assert lines[-1].startswith("overall: critical (checked ")
    assert SystemHealthMetric.objects.count() == len(lines) - 3  # header, blank line, overall


def test_fail_on_exits_with_an_error_when_health_is_that_bad(machine, no_cluster):
    with pytest.raises(CommandError, match="overall health is critical"):
        run("--fail-on", "critical")


def test_fail_on_passes_when_health_is_better(machine, no_cluster):
    publish_cluster(workers=2)
    lines = run("--fail-on", "warning")
    assert lines[-1].startswith("overall: healthy")
