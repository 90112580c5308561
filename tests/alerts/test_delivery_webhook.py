"""Webhook notifications against a real local HTTP server: success, 500, timeout, retries."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_q.signing import SignedPackage

import jobs.queue
from alerts.manager import alert_manager
from alerts.models import AlertHistory, DeliveryStatus, NotificationDelivery
from alerts.services import alert_acknowledge, alert_resolve, dispatch_due_deliveries
from alerts.tasks import deliver
from jobs.manager import job_manager

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture
def route_to(alert_settings):
    def route(*recipients):
        alert_settings["RECIPIENTS"]["error"] = list(recipients)

    return route


def raise_alert(title="ai_matching job failed", job_type="ai_matching"):
    return alert_manager.process_alert_sync(
        "job_failure",
        "error",
        {
            "title": title,
            "message": "It failed.",
            "job_type": job_type,
            "error": "httpx.ConnectTimeout: timed out (transient)",
        },
    )


def state_of(delivery_id=None):
    delivery = NotificationDelivery.objects.get(**({"id": delivery_id} if delivery_id else {}))
    alert = AlertHistory.objects.get(id=delivery.alert_id)
    return delivery, alert


def test_a_generic_webhook_gets_the_alert_as_json(webhook_server, route_to, deliveries_run):
    route_to(f"{webhook_server.url}/hooks/ops?token=s3cret")
    with time_machine.travel(NOW, tick=False), deliveries_run():
        alert = raise_alert()

    [request] = webhook_server.requests
    delivery, _ = state_of()
    assert request["path"] == "/hooks/ops?token=s3cret"
    assert request["json"] == {
        "event": "alert",
        "headline": "New alert",
        "delivery_id": str(delivery.id),  # the same on a retry of this delivery: a repeat to drop
        "alert": {
            "id": str(alert.id),
            "type": "job_failure",
            "severity": "error",
            "title": "ai_matching job failed",
            "message": "It failed.",
            "job_type": "ai_matching",
            "job_id": None,
            "error": "httpx.ConnectTimeout: timed out (transient)",
            "occurrences": 1,
            "triggered_at": "2026-11-29T03:00:00+00:00",
            "last_seen_at": "2026-11-29T03:00:00+00:00",
            "url": f"https://monitor.example.com/alerts/{alert.id}/",
            "job_url": None,
            "acknowledged": None,  # {"by": "alice", "until": "…"} while an acknowledgement holds
        },
    }
    delivery, alert = state_of()
    assert (delivery.status, delivery.channel, alert.notification_sent) == (DeliveryStatus.SENT, "webhook", True)
    assert delivery.last_duration_ms is not None


def test_slack_gets_blocks_with_user_text_escaped(webhook_server, route_to, deliveries_run):
    route_to(f"slack:{webhook_server.url}/services/T000/B000/XXXX")
    with deliveries_run():
        alert = raise_alert(title="<script>alert(1)</script> & co")

    payload = webhook_server.requests[0]["json"]
    assert payload["text"] == "[ERROR] New alert: &lt;script&gt;alert(1)&lt;/script&gt; &amp; co"
    headline = payload["blocks"][0]["text"]["text"]
    escaped_title = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"
    assert f"<https://monitor.example.com/alerts/{alert.id}/|{escaped_title}>" in headline
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert fields[0] == "*Severity*\nerror" and fields[1] == "*Job type / job*\nai_matching / -"
    assert fields[2].startswith("*Occurrences*\n1 (last ")
    assert payload["blocks"][2]["text"]["text"] == "*Error*\nhttpx.ConnectTimeout: timed out (transient)"
    assert state_of()[0].channel == "slack"


def test_slack_hears_who_took_the_alert_and_who_resolved_it(webhook_server, route_to, deliveries_run, alice):
    slack = f"slack:{webhook_server.url}/services/T000/B000/XXXX"
    route_to(slack)
    with time_machine.travel(NOW, tick=False):
        with deliveries_run():
            alert = raise_alert()
        with deliveries_run():
            alert_acknowledge(alert=alert, user=alice)
        with deliveries_run():  # anything sent meanwhile says who is on it
            alert_manager.send_notification_sync([slack], "Still occurring", "error", alert=alert, kind="repeat")
        with deliveries_run():
            alert_resolve(alert=alert, user=alice)

    said = [request["json"]["blocks"][0]["text"]["text"].split("\n") for request in webhook_server.requests]
    assert [lines[0] for lines in said] == [
        ":x: *New alert*",
        ":eyes: *Acknowledged by alice until 04:00 UTC*",
        ":x: *Still occurring*",
        ":white_check_mark: *Resolved by alice*",
    ]
    assert said[2][-1] == ":eyes: _acknowledged by alice until 04:00 UTC_"
    assert webhook_server.requests[2]["json"]["text"].endswith("(acknowledged by alice until 04:00 UTC)")


@pytest.mark.parametrize(
    "answer, error",
    [(500, "attempt 1: HTTP 500: upstream exploded"), ("hang", "attempt 1: timed out after 0.5s (ReadTimeout)")],
)
def test_a_500_or_a_timeout_is_retried_and_notification_sent_stays_false_until_success(
    webhook_server, route_to, deliveries_run, answer, error
):
    route_to(f"{webhook_server.url}/hook")
    webhook_server.plan = [answer, 200]
    with time_machine.travel(NOW, tick=False), deliveries_run():
        raise_alert()

    delivery, alert = state_of()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.PENDING, 1, error)
    assert delivery.next_attempt_at > NOW
    assert alert.notification_sent is False

    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1), tick=False), deliveries_run():
        assert dispatch_due_deliveries() == 1

    delivery, alert = state_of()
    assert (delivery.status, delivery.attempts, alert.notification_sent) == (DeliveryStatus.SENT, 2, True)
    assert len(webhook_server.requests) == 2


def test_a_4xx_other_than_408_or_429_is_permanent(webhook_server, route_to, deliveries_run):
    route_to(f"{webhook_server.url}/gone")
    webhook_server.plan = [404]
    with deliveries_run():
        raise_alert()
    delivery, alert = state_of()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.FAILED,
        1,
        "attempt 1: HTTP 404: upstream exploded",
    )
    assert alert.notification_sent is False


def test_a_429_is_retried(webhook_server, route_to, deliveries_run):
    route_to(f"{webhook_server.url}/busy")
    webhook_server.plan = [429]
    with deliveries_run():
        raise_alert()
    assert state_of()[0].status == DeliveryStatus.PENDING


def test_one_channel_down_does_not_stop_the_others(webhook_server, route_to, deliveries_run):
    route_to("http://127.0.0.1:9/nothing-listens-here", f"{webhook_server.url}/hook", "ops@example.com")
    with deliveries_run():
        alert = raise_alert()
    statuses = dict(alert.deliveries.values_list("recipient", "status"))
    assert statuses == {
        "http://127.0.0.1:9/nothing-listens-here": DeliveryStatus.PENDING,  # refused: retried later
        f"{webhook_server.url}/hook": DeliveryStatus.SENT,
        "ops@example.com": DeliveryStatus.SENT,
    }
    assert "ConnectError" in alert.deliveries.get(recipient__contains=":9/").last_error
    alert.refresh_from_db()
    assert alert.notification_sent is True  # someone was told


def test_a_duplicate_task_for_the_same_delivery_sends_nothing_twice(webhook_server, route_to, deliveries_run):
    route_to(f"{webhook_server.url}/hook")
    with deliveries_run():
        raise_alert()
    delivery, _ = state_of()
    assert deliver(delivery.id) is None
    assert len(webhook_server.requests) == 1


def test_an_attempt_whose_worker_died_is_taken_back_by_the_sweep(webhook_server, route_to, deliveries_run):
    route_to(f"{webhook_server.url}/hook")
    with time_machine.travel(NOW, tick=False):
        raise_alert()  # queued, its task never ran ...
        NotificationDelivery.objects.update(status=DeliveryStatus.SENDING, attempts=1, claimed_at=NOW)  # ... or died
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        assert dispatch_due_deliveries() == 0  # may still be running
    with time_machine.travel(NOW + timedelta(minutes=3), tick=False):
        dispatch_due_deliveries()
    delivery, _ = state_of()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_error == "attempt 1: interrupted: the worker stopped during the attempt claimed at 03:00:00"
    with time_machine.travel(delivery.next_attempt_at, tick=False), deliveries_run():
        dispatch_due_deliveries()
    assert state_of()[0].status == DeliveryStatus.SENT


def test_each_attempt_at_one_delivery_carries_its_id_so_a_receiver_can_drop_a_repeat(
    webhook_server, route_to, deliveries_run
):
    """Sending is at least once: the receiver may have acted on an attempt whose answer was lost."""
    route_to(f"{webhook_server.url}/hook")
    webhook_server.plan = [500]
    with time_machine.travel(NOW, tick=False), deliveries_run():
        raise_alert()
    delivery, _ = state_of()
    with time_machine.travel(delivery.next_attempt_at, tick=False), deliveries_run():
        dispatch_due_deliveries()

    assert state_of()[0].status == DeliveryStatus.SENT
    assert [r["json"]["delivery_id"] for r in webhook_server.requests] == [str(delivery.id)] * 2


def test_a_recipient_that_names_no_channel_is_kept_as_a_failed_delivery(route_to):
    route_to("not an address")
    raise_alert()
    delivery, _ = state_of()
    assert (delivery.status, delivery.channel) == (DeliveryStatus.FAILED, "unknown")
    assert "neither an email address, an http(s) URL nor slack:<URL>" in delivery.last_error


def test_a_delivery_is_handed_to_a_worker_before_the_jobs_already_waiting(monkeypatch, django_capture_on_commit_callbacks):
    """Alerts fire when jobs back up: their notifications must not queue behind those jobs."""
    monkeypatch.setattr(jobs.queue, "_broker", None)
    broker = jobs.queue.shared_broker()
    broker.purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            job_manager.submit_job("demo.sleep", {"seconds": 1, "steps": 1})
    with django_capture_on_commit_callbacks(execute=True):
        alert = alert_manager.process_alert_sync("system_health", "critical", {"title": "db down", "check": "database"})

    handed_out = [SignedPackage.loads(broker.dequeue()[0][1]) for _ in range(alert.deliveries.count() + 1)]
    assert [(task["func"], task["args"]) for task in handed_out[:-1]] == [
        ("alerts.tasks.deliver", (delivery_id,)) for delivery_id in alert.deliveries.order_by("id").values_list("id", flat=True)
    ]
    assert handed_out[-1]["func"] == "jobs.tasks.run_job"
