"""A notification webhook that is down, slow (beyond its timeout) or answering 500, while jobs run on a
real `qcluster` node: the alert is kept, its delivery retried with backoff and delivered once the
webhook recovers, and jobs never wait for it.

The test drives the delivery sweep (alerts.tasks.dispatch_due_deliveries, a periodic task every
minute in production) itself, every 0.1 s, with the backoff shortened to fit.
"""

import pytest

from alerts.models import AlertHistory, DeliveryStatus, NotificationDelivery
from alerts.services import dispatch_due_deliveries
from jobs.manager import job_manager
from jobs.models import ACTIVE_STATUSES, Job, JobStatus
from tests.conftest import wait_for
from tests.reliability.webhook import Webhook

pytestmark = [pytest.mark.reliability, pytest.mark.worker]

TIMEOUT = 0.5  # seconds per delivery attempt
BASE_DELAY = 0.2  # backoff before attempt n+1: 0.2 * 2**n s, plus 10-30 % jitter
DELIVERY_ENV = {
    "ALERTS_DELIVERY_TIMEOUT": str(TIMEOUT),
    "ALERTS_DELIVERY_BASE_DELAY": str(BASE_DELAY),
    "ALERTS_DELIVERY_MAX_DELAY": "5",
    "ALERTS_DELIVERY_MAX_ATTEMPTS": "10",
}
# What each fault looks like in the delivery's last error.
EXPECTED_ERROR = {
    "down": "ConnectError",
    "slow": f"timed out after {TIMEOUT:g}s",
    "error": "HTTP 500: internal error",
}


@pytest.fixture
def webhook():
    hook = Webhook(slow_seconds=10)
    yield hook
    hook.close()


def sweeping_until(condition, *, timeout: float, message: str):
    """Run the delivery sweep as its schedule would, until `condition` holds."""

    def swept():
        dispatch_due_deliveries()
        return condition()

    return wait_for(swept, timeout=timeout, interval=0.1, message=message)


def delivery() -> NotificationDelivery:
    return NotificationDelivery.objects.get()


@pytest.mark.parametrize("fault", ["down", "slow", "error"])
def test_a_failing_webhook_keeps_the_alert_retries_with_backoff_and_delivers_once_it_recovers(
    cluster_nodes, webhook, settings, figures, fault
):
    settings.ALERTS = {**settings.ALERTS, "DELIVERY_TIMEOUT": TIMEOUT, "DELIVERY_BASE_DELAY": BASE_DELAY}
    if fault != "down":
        webhook.mode = fault
        webhook.up()
    cluster_nodes(1, workers=2, ALERTS_RECIPIENTS_ERROR=webhook.url, **DELIVERY_ENV)

    failing = job_manager.submit_job("reliability.bad_data", {"record": 7})
    alert = wait_for(lambda: AlertHistory.objects.filter(job=failing).first(), message="the alert")
    # The delivery fails three times, each attempt cut at the timeout, each retry planned later.
    planned = {}  # attempts so far -> seconds planned before the next one

    def third_failure_recorded():
        d = delivery()
        if d.status == DeliveryStatus.PENDING and d.attempts:
            planned[d.attempts] = (d.next_attempt_at - d.updated_at).total_seconds()
        return d.attempts >= 3 and d.status == DeliveryStatus.PENDING and d

    failed = sweeping_until(third_failure_recorded, timeout=20, message="three failed attempts")
    assert EXPECTED_ERROR[fault] in failed.last_error
    assert failed.last_duration_ms < (TIMEOUT + 0.5) * 1000
    # Backoff: 0.2 * 2**n s plus 10-30 % jitter after attempt n.
    assert sorted(planned) == [1, 2, 3]
    for n, delay in planned.items():
        assert BASE_DELAY * 2**n * 1.1 - 0.01 <= delay <= BASE_DELAY * 2**n * 1.3 + 0.01
    if fault != "down":
        # ... and no attempt came earlier than planned.
        arrivals = [request.at for request in webhook.received(fault)]
        for n, (earlier, later) in enumerate(zip(arrivals, arrivals[1:]), start=1):
            assert later - earlier >= planned[n]
    # Meanwhile the alert is kept, not yet marked notified, and jobs keep flowing.
    alert.refresh_from_db()
    assert alert.resolved_at is None and alert.notification_sent is False
    failing.refresh_from_db()
    assert failing.status == JobStatus.FAILED
    assert (failing.finished_at - failing.attempt_started_at).total_seconds() < 1
    others = [job_manager.submit_job("reliability.quick", {"n": n}) for n in range(10)]
    wait_for(
        lambda: not Job.objects.filter(id__in=[j.id for j in others], status__in=ACTIVE_STATUSES).exists(),
        timeout=10,
        message="jobs submitted during the fault to finish",
    )

    # The webhook recovers: the next attempt delivers, once.
    if fault == "down":
        webhook.up()
    webhook.mode = "ok"
    sweeping_until(lambda: delivery().status == DeliveryStatus.SENT, timeout=20, message="the delivery")
    alert.refresh_from_db()
    assert alert.notification_sent is True
    delivered = webhook.received("ok")
    assert len(delivered) == 1
    assert delivered[0].body["alert"]["id"] == str(alert.id)
    assert delivered[0].body["alert"]["error"] == "ValueError: candidate record 7 is malformed (data)"
    figures(
        f"webhook {fault}: {delivery().attempts} attempts ({failed.last_error}), backoff "
        + ", ".join(f"{planned[n]:.2f}s" for n in sorted(planned))
        + "; delivered once on recovery; 10 jobs ran meanwhile"
    )
