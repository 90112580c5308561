"""A qcluster node told to stop (one SIGTERM: a deploy, a scale-down) while it has more work than
workers: the attempts it runs finish, and the tasks it took from the broker ahead of time go back
to the broker untouched, for the other node, instead of starting after the stop was asked for (a
drill saw a stopped node start new 90 s attempts a minute after its SIGTERM, which the service
manager's kill then cut off)."""

import os
import signal

import psutil
import pytest
from django.utils import timezone

from jobs.manager import job_manager
from jobs.models import Job, JobStatus
from tests.conftest import wait_for
from tests.reliability.ledger import Ledger
from tests.reliability.test_worker_killed import all_finished

pytestmark = [pytest.mark.reliability, pytest.mark.worker]


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_stopping_node_finishes_what_it_runs_and_hands_back_what_it_took_ahead(cluster_nodes, run_log, broker):
    stopping, other = cluster_nodes(2, workers=2, broker=broker)
    # 3 s each: each node takes up to 7 at once (2 running, 4 in its queue, 1 in the pusher's hand).
    jobs = [job_manager.submit_job("reliability.steps", {"steps": 30, "seconds": 0.1}) for _ in range(16)]
    on_it = Job.objects.filter(status=JobStatus.RUNNING, progress__gt=0, worker__startswith=f"{stopping.name}:")
    wait_for(lambda: on_it.count() == 2, timeout=30, message=f"{stopping.name} to run two jobs")
    asked_at = timezone.now()

    stopping.stop(grace=30)  # one SIGTERM, then it is waited for

    assert stopping.popen.returncode == 0, "it exited by itself, not killed after the grace period"
    wait_for(all_finished, timeout=60, message="every job to finish")
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.COMPLETED}
    started_after = Job.objects.filter(worker__startswith=f"{stopping.name}:", attempt_started_at__gt=asked_at)
    assert not started_after.exists()  # what it had taken ahead ran on the other node
    ledger = Ledger.read(run_log.runs())
    assert ledger.problems() == []
    assert ledger.attempts == len(jobs)  # each job ran once: none was started and cut off
    assert Job.objects.filter(worker__startswith=f"{other.name}:").count() > len(jobs) // 2


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_node_whose_main_process_died_stops_as_if_told_to(cluster_nodes, run_log, broker):
    """Its sentinel, pusher and workers outlived it (a drill: they started 6 more attempts after its
    main process was killed with SIGKILL, and lived on once the queue was empty), and a restart
    would have started a second cluster beside them. They now stop as after a SIGTERM: what runs
    finishes, what was taken ahead goes back to the broker."""
    orphaned, other = cluster_nodes(2, workers=2, broker=broker)
    jobs = [job_manager.submit_job("reliability.steps", {"steps": 30, "seconds": 0.1}) for _ in range(16)]
    on_it = Job.objects.filter(status=JobStatus.RUNNING, progress__gt=0, worker__startswith=f"{orphaned.name}:")
    wait_for(lambda: on_it.count() == 2, timeout=30, message=f"{orphaned.name} to run two jobs")
    left_behind = orphaned.descendants()
    killed_at = timezone.now()

    os.kill(orphaned.pid, signal.SIGKILL)  # its main process only

    wait_for(
        lambda: not any(alive(p) for p in left_behind), timeout=30, message="its sentinel, pusher and workers to exit"
    )
    wait_for(all_finished, timeout=60, message="every job to finish")
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.COMPLETED}
    started_after = Job.objects.filter(worker__startswith=f"{orphaned.name}:", attempt_started_at__gt=killed_at)
    assert not started_after.exists()  # what it had taken ahead ran on the other node
    ledger = Ledger.read(run_log.runs())
    assert ledger.problems() == []
    assert ledger.attempts == len(jobs)


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE  # exited, not yet reaped by its parent
    except psutil.NoSuchProcess:
        return False
