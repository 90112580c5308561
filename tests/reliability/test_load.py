"""1,000 jobs of mixed kinds on two `qcluster` nodes sharing the database, on each broker: afterwards
every count reconciles exactly. The throughput is listed at the end of the run ("reliability
figures") and in docs/reliability.md.

RELIABILITY_LOAD_JOBS changes the number of jobs (1,000 by default).
"""

import os
import random
import time
from collections import Counter

import pytest

from alerts.models import AlertHistory, AlertOccurrence, AlertType, DeliveryStatus, NotificationDelivery
from jobs.manager import job_manager
from jobs.models import ACTIVE_STATUSES, Job, JobStatus
from tests.conftest import wait_for
from tests.reliability.ledger import Ledger
from tests.reliability.webhook import Webhook

pytestmark = [pytest.mark.reliability, pytest.mark.worker]

JOBS = int(os.environ.get("RELIABILITY_LOAD_JOBS", "1000"))

# share of the jobs, job type, parameters, attempts each takes, how it ends
MIX = [
    (0.50, "reliability.quick", {}, 1, JobStatus.COMPLETED),
    (0.20, "reliability.steps", {"steps": 3}, 1, JobStatus.COMPLETED),
    (0.15, "reliability.flaky", {"fail_times": 1}, 2, JobStatus.COMPLETED),  # transient once
    (0.05, "reliability.flaky", {"fail_times": 2}, 3, JobStatus.COMPLETED),  # transient twice
    (0.05, "reliability.flaky", {"fail_times": 3}, 3, JobStatus.FAILED),  # transient, retries exhausted
    (0.05, "reliability.bad_data", {}, 1, JobStatus.FAILED),  # a data error: not retried
]


def mixed_jobs(count: int) -> list[tuple[str, dict, int, str]]:
    jobs = []
    for share, job_type, params, attempts, outcome in MIX:
        jobs += [(job_type, params, attempts, outcome)] * round(share * count)
    random.Random(7).shuffle(jobs)  # interleaved, the same order every run
    return jobs


@pytest.fixture
def webhook():
    hook = Webhook().up()
    yield hook
    hook.close()


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_thousand_jobs_on_two_nodes_reconcile_exactly(cluster_nodes, run_log, webhook, figures, broker):
    plan = mixed_jobs(JOBS)
    nodes = cluster_nodes(2, workers=2, broker=broker, ALERTS_RECIPIENTS_ERROR=webhook.url)

    started = time.monotonic()
    submitted = {}  # job id -> (job type, attempts it needs, how it ends)
    for job_type, params, attempts, outcome in plan:
        submitted[str(job_manager.submit_job(job_type, params).id)] = (job_type, attempts, outcome)
    submitted_in = time.monotonic() - started
    wait_for(
        lambda: not Job.objects.filter(status__in=ACTIVE_STATUSES).exists(),
        timeout=max(120, JOBS * 0.3),
        interval=0.5,
        message="every job to finish",
    )
    elapsed = time.monotonic() - started
    assert all(node.alive() for node in nodes)

    ledger = Ledger.read(run_log.runs())
    # Each job reached one terminal state, the one its kind leads to, after the attempts it needed.
    assert {job_id: ledger.jobs[job_id] for job_id in submitted} == {
        job_id: (outcome, attempts) for job_id, (_, attempts, outcome) in submitted.items()
    }
    # One started and one terminal event per attempt, retry history rows matching the attempts,
    # one completed event per completed job, each attempt's code run exactly once.
    assert ledger.problems() == []
    attempts = sum(attempts for _, attempts, _ in submitted.values())
    assert ledger.attempts == ledger.history_rows == sum(ledger.runs.values()) == attempts
    # Alerts: one per rule and job type that failed for good, counting each of those jobs once.
    failed = {job_id: job_type for job_id, (job_type, _, outcome) in submitted.items() if outcome == JobStatus.FAILED}
    alerts = AlertHistory.objects.filter(alert_type=AlertType.JOB_FAILURE)
    assert sorted(alerts.values_list("title", flat=True)) == [
        "reliability.bad_data job failed",
        "reliability.flaky job failed",
    ]
    occurrences = AlertOccurrence.objects.filter(alert__in=alerts)
    assert sorted(str(job_id) for job_id in occurrences.values_list("job_id", flat=True)) == sorted(failed)
    assert dict(alerts.values_list("state__job_type", "state__occurrences")) == Counter(failed.values())
    # ... and one notification each, delivered once.
    wait_for(
        lambda: NotificationDelivery.objects.filter(status=DeliveryStatus.SENT).count() == 2,
        message="the two notifications to be delivered",
    )
    assert Counter(r.body["alert"]["title"] for r in webhook.received()) == {
        "reliability.bad_data job failed": 1,
        "reliability.flaky job failed": 1,
    }

    figures(
        f"{broker} broker, 2 nodes x 2 workers, {connection_vendor()}: {JOBS} jobs, {attempts} attempts, "
        f"{ledger.event_rows} events in {elapsed:.1f}s from the first submit (submitting took {submitted_in:.1f}s): "
        f"{JOBS / elapsed:.1f} jobs/s, {attempts / elapsed:.1f} attempts/s, "
        f"{ledger.event_rows / elapsed:.0f} events/s; "
        f"{len(failed)} failed for good -> {alerts.count()} alerts, {len(webhook.received())} notifications"
    )


def connection_vendor() -> str:
    from django.db import connection

    return {"postgresql": "PostgreSQL", "sqlite": "SQLite"}[connection.vendor]
