"""One node cut off from the database by a silent network partition while it runs jobs, the other
node still reaching it. Nothing is refused (unlike test_database_outage.py): node-a reaches
Postgres through a TCP relay whose packets iptables drops for a while, so its queries hang until
DB_DEAD_AFTER_SECONDS gives up on them. Its heartbeats fail; node-b's sweep takes its attempts
back after JOBS_STALE_AFTER and runs them again; once the cut is lifted node-a's late outcomes
are ignored and it runs new jobs. One of node-a's connections is in a transaction on a job's row
when the cut comes, as an outcome's or a claim's may be: the server must end it (its own
keepalives, config/settings.py), or node-b's sweep waits on that row. Postgres, root and iptables
(skipped, with the reason, without).
"""

import subprocess
import sys
import time

import pytest
from django.db import connection
from django.utils import timezone

from jobs.manager import job_manager
from jobs.models import Job, JobRetryHistory, JobStatus
from monitoring.models import JobExecutionLog
from tests.conftest import wait_for
from tests.reliability.faults import packets_dropped
from tests.reliability.ledger import Ledger
from tests.reliability.nodes import BASE_DIR, FAST_JOBS_ENV, elapsed, process_env

pytestmark = [pytest.mark.reliability, pytest.mark.worker, pytest.mark.postgres]

DEAD_AFTER_SECONDS = 3
# Longer than JOBS_STALE_AFTER and DB_DEAD_AFTER_SECONDS together: node-b must take node-a's attempts
# back while node-a is still cut off.
CUT_SECONDS = 9


# One of node-a's connections (its settings, through the relay) in the middle of a transaction on a
# job's row, as an outcome's or a claim's is: the cut leaves it open on the server.
ROW_HOLDER = """
import sys, django
django.setup()
from django.db import connection, transaction
job_id = sys.stdin.readline().strip()
with transaction.atomic(), connection.cursor() as cursor:
    cursor.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", [job_id])
    print("locked", flush=True)
    sys.stdin.readline()
"""


def relayed_database_url(relay) -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@127.0.0.1:{relay.port}/{db['NAME']}"


def running_on(node, at_least: int) -> list[Job] | None:
    """Jobs running on `node`, if at least that many, all begun and none past half-way."""
    running = Job.objects.filter(status=JobStatus.RUNNING, worker__startswith=f"{node.name}:")
    jobs = list(running)
    begun = len(jobs) >= at_least and all(0 < job.progress <= 50 for job in jobs)
    return jobs if begun else None


def all_finished() -> bool:
    return not Job.objects.exclude(status__in=[JobStatus.COMPLETED, JobStatus.FAILED]).exists()


def clusters_reporting_since(moment) -> int:
    """django-q2 clusters whose sentinel saved its status (what the health check reads) after `moment`."""
    from django_q.status import Stat

    import jobs.queue

    return sum(1 for stat in Stat.get_all(broker=jobs.queue.shared_broker()) if stat.timestamp > moment)


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_node_cut_off_from_the_database_has_its_jobs_taken_back_and_recovers(
    database_relay, cluster_nodes, run_log, figures, broker
):
    assert float(FAST_JOBS_ENV["JOBS_STALE_AFTER"]) + DEAD_AFTER_SECONDS < CUT_SECONDS
    dead_after = {"DB_DEAD_AFTER_SECONDS": str(DEAD_AFTER_SECONDS)}
    # Started first, each node on its own: cluster_nodes empties the broker's queue as it starts them.
    (cut_off,) = cluster_nodes(1, broker=broker, DATABASE_URL=relayed_database_url(database_relay), **dead_after)
    (other,) = cluster_nodes(1, broker=broker, **dead_after)
    holder = subprocess.Popen(
        [sys.executable, "-c", ROW_HOLDER],
        env=process_env(DATABASE_URL=relayed_database_url(database_relay), **dead_after),
        cwd=BASE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # 16 jobs of 2 s: each node holds 7 (2 running, 5 taken ahead), 2 wait in the broker. node-a's
        # pusher, blocked while its workers are, cannot take the attempts node-b queues again.
        jobs = [job_manager.submit_job("reliability.steps", {"steps": 20, "seconds": 0.1}) for _ in range(16)]
        # Cut while the two are no more than half-way: neither ends before the cut.
        victims = wait_for(lambda: running_on(cut_off, at_least=2), timeout=30, message="node-a to run two jobs")
        holder.stdin.write(f"{victims[0].id}\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "locked"
        cut_at = time.monotonic()
        # Both legs of the relay: the server hears nothing from node-a either.
        with packets_dropped(*database_relay.path):
            # Taken back while node-a is still cut off: its attempts' heartbeats stopped reaching the database.
            wait_for(
                lambda: (
                    JobExecutionLog.objects.filter(
                        job__in=victims, error_details__type="jobs.errors.WorkerLostError"
                    ).count()
                    == len(victims)
                ),
                timeout=CUT_SECONDS,
                message="node-b to take node-a's attempts back",
            )
            taken_back_after = elapsed(cut_at)
            time.sleep(max(0.0, CUT_SECONDS - elapsed(cut_at)))  # the cut itself lasts this long
    finally:
        holder.kill()
        holder.communicate()
    lifted_at, back_at = time.monotonic(), timezone.now()

    wait_for(all_finished, timeout=60, message="every job to finish")
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.COMPLETED}
    # node-a's attempts were run again by node-b; what node-a wrote of them afterwards was ignored.
    for victim in victims:
        job = Job.objects.get(id=victim.id)
        assert job.attempts == 2
        assert job.worker.startswith(f"{other.name}:"), job.worker
        first = JobRetryHistory.objects.get(job=job, attempt_number=1)
        assert first.status == "failed"
        assert f"worker {victim.worker} stopped sending heartbeats" in first.error_message
    ledger = Ledger.read(run_log.runs())
    assert ledger.problems() == []
    assert ledger.attempts == len(jobs) + len(victims)
    assert "outcome of job" in cut_off.log() and "ignored: that attempt is no longer running" in cut_off.log()
    finished_after = elapsed(lifted_at)

    # node-a reports again, and runs jobs submitted now (node-b stopped: nothing else can).
    wait_for(lambda: clusters_reporting_since(back_at) == 2, timeout=10, message="both nodes to report again")
    other.stop()
    later = [job_manager.submit_job("reliability.steps", {"steps": 5}) for _ in range(4)]
    wait_for(all_finished, timeout=30, message="node-a to run the jobs submitted after the cut")
    assert {job.worker.split(":")[0] for job in Job.objects.filter(id__in=[j.id for j in later])} == {cut_off.name}
    assert cut_off.alive()
    assert Ledger.read(run_log.runs()).problems() == []
    assert "Traceback" not in cut_off.log()
    figures(
        f"{broker} broker: node-a cut off for {CUT_SECONDS}s (DB_DEAD_AFTER_SECONDS {DEAD_AFTER_SECONDS}, "
        f"JOBS_STALE_AFTER {FAST_JOBS_ENV['JOBS_STALE_AFTER']}); its {len(victims)} attempts taken back "
        f"{taken_back_after:.1f}s into the cut and run again on node-b; all {len(jobs)} jobs completed once, "
        f"{finished_after:.1f}s after the lift"
    )
