"""Alerts: open ones and their history, filters, one alert in full, and Acknowledge and Resolve for
those allowed to."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

import monitoring.views.alerts
from alerts.manager import alert_manager, fingerprint
from alerts.models import AlertHistory, AlertOccurrence, AlertState, DeliveryStatus, NotificationDelivery
from alerts.services import alert_acknowledge, alert_resolve
from tests.factories import AlertHistoryFactory, JobFactory, UserFactory
from tests.monitoring.views.conftest import htmx

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
SCRIPT = "<script>alert('pwned')</script>"


@pytest.fixture(autouse=True)
def recipients(settings):
    settings.ALERTS = {
        **settings.ALERTS,
        "RECIPIENTS": {
            "info": [],
            "warning": ["ops@example.com"],
            "error": ["ops@example.com", "https://hooks.example.com/T0/SECRET"],
            "critical": ["ops@example.com"],
        },
    }


def job_failure(job, minutes_ago: float = 0, **data):
    """What the job-failure rule raises when `job` fails for good (counted into an open alert)."""
    with time_machine.travel(NOW - timedelta(minutes=minutes_ago), tick=False):
        return alert_manager.process_alert_sync(
            "job_failure",
            data.pop("severity", "error"),
            {
                "title": f"{job.job_type} job failed",
                "message": f"Job {job.id} failed after 3 attempts.",
                "job_id": job.id,
                "job_type": job.job_type,
                "error": "httpx.ConnectTimeout: timed out (transient)",
                **data,
            },
        )


def health_alert(minutes_ago: float = 0, severity: str = "critical"):
    with time_machine.travel(NOW - timedelta(minutes=minutes_ago), tick=False):
        down = {"title": "database is down", "message": "no answer", "check": "database/connect"}
        return alert_manager.process_alert_sync("system_health", severity, down)


def rows(response) -> list:
    return [alert.id for alert in response.context["page"].object_list]


@time_machine.travel(NOW, tick=False)
def test_lists_open_alerts_with_severity_count_times_flags_and_delivery_errors(alice_client):
    first = job_failure(JobFactory(job_type="ai_matching"), minutes_ago=30)
    job_failure(JobFactory(job_type="ai_matching"), minutes_ago=5)  # counted into the first
    AlertHistory.objects.filter(id=first.id).update(escalated=True, notification_sent=True)
    first.deliveries.filter(channel="webhook").update(status=DeliveryStatus.FAILED, last_error="HTTP 503: unavailable")
    database = health_alert(minutes_ago=1)
    resolve_me = job_failure(JobFactory(job_type="demo.fail"), minutes_ago=10)
    alert_resolve(alert=resolve_me)

    response = alice_client.get("/alerts/")

    assert response.status_code == 200
    assert rows(response) == [database.id, first.id]  # open ones, newest first
    page = response.content.decode()
    row = page.split(f'<tr role="row" id="alert-{first.id}"')[1].split("</tr>")[0]
    assert '<span class="badge-symbol" aria-hidden="true">✕</span> error' in row
    assert f'<a href="/alerts/{first.id}/" class="alert-title">ai_matching job failed</a>' in row
    assert "<code>job_failure</code> · ai_matching" in row
    assert "<strong>×2</strong>" in row and "30m 00s ago" in row and "5m 00s ago" in row
    assert "✓ notified" in row and "⇡ escalated" in row and "✕ delivery failed: HTTP 503: unavailable" in row
    assert "Resolve</button>" in row
    counts = page.split('aria-label="Open alerts by severity"')[1].split('<div class="table-wrap">')[0]
    assert counts.index("badge-critical") < counts.index("badge-error") < counts.index("badge-warning")  # worst first


def test_open_alerts_of_one_job_type_tell_their_error_class_apart(alice_client):
    """Three rows read "demo.fail job failed": their error class (the rule's fingerprint) tells them apart."""
    alerts = {
        error_class: job_failure(
            JobFactory(job_type="demo.fail"),
            fingerprint=f"demo.fail/{error_class}",  # as alerts.rules.job_failure_verdict raises it
            details={"error_class": error_class},
        )
        for error_class in ("transient", "data", "configuration")
    }
    database = health_alert()

    page = alice_client.get("/alerts/").content.decode()

    def row(alert):
        return page.split(f'<tr role="row" id="alert-{alert.id}"')[1].split("</tr>")[0]

    for error_class, alert in alerts.items():
        assert "demo.fail job failed" in row(alert)
        assert f'<span class="badge badge-{error_class}">' in row(alert)  # a symbol and the word
    assert "<code>system_health</code> · <code>database/connect</code>" in row(database)  # the check's name


def test_filters_live_in_the_query_string(alice_client):
    critical = health_alert()
    error = job_failure(JobFactory())
    resolved = job_failure(JobFactory(job_type="ai_matching"))
    alert_resolve(alert=resolved)

    assert rows(alice_client.get("/alerts/?severity=critical")) == [critical.id]
    assert rows(alice_client.get("/alerts/?alert_type=job_failure")) == [error.id]
    assert set(rows(alice_client.get("/alerts/?include_resolved=1"))) == {critical.id, error.id, resolved.id}
    page = alice_client.get("/alerts/?include_resolved=1&alert_type=job_failure").content.decode()
    assert 'hx-get="/alerts/?include_resolved=1&amp;alert_type=job_failure"' in page  # polls keep them
    assert '<option value="job_failure" selected>' in page
    assert "badge-resolved" in page and "by " not in page.split(f'id="alert-{resolved.id}"')[1].split("</tr>")[0]


def test_not_acknowledged_only_lists_the_open_alerts_nobody_is_on(alice_client, alice):
    critical, error = health_alert(), job_failure(JobFactory())
    with time_machine.travel(NOW, tick=False):
        alert_acknowledge(alert=critical, user=alice)

    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        response = alice_client.get("/alerts/?unacknowledged=1")
        assert rows(response) == [error.id]
        page = response.content.decode()
        checkbox = '<input type="checkbox" name="unacknowledged" id="filter-unacknowledged" value="1" checked>'
        assert f"{checkbox} not acknowledged only" in page
        assert "1–1 of <strong>1</strong> open alert not acknowledged" in page
        assert 'hx-get="/alerts/?unacknowledged=1"' in page  # polls keep it
        assert rows(alice_client.get("/alerts/?unacknowledged=true&severity=critical")) == []

        acknowledged = alice_client.post(
            f"/alerts/{error.id}/acknowledge/", {"next": "/alerts/?unacknowledged=1"}, headers=htmx(f"alert-{error.id}")
        )
        # The counts swapped in with the row say it as the list will at its next poll.
        assert "Every open alert is acknowledged\n" in acknowledged.content.decode().split('id="alert-list-counts"')[1]
        page = alice_client.get("/alerts/?unacknowledged=1").content.decode()
        assert "Every open alert is acknowledged: someone is on each." in page
        assert "Every open alert is acknowledged\n" in page.split('id="alert-list-counts"')[1]
        # Narrowed further, an empty list is only that: no match.
        page = alice_client.get("/alerts/?unacknowledged=1&severity=error").content.decode()
        assert "No open alerts match these filters" in page and "Every open" not in page

    # An hour after it, the critical one's acknowledgement has lapsed: nobody is on it any more.
    with time_machine.travel(NOW + timedelta(minutes=61), tick=False):
        assert rows(alice_client.get("/alerts/?unacknowledged=1")) == [critical.id]
    # The history tab has no such filter: resolved alerts are neither.
    assert 'name="unacknowledged"' not in alice_client.get("/alerts/?include_resolved=1").content.decode()


def test_not_acknowledged_only_narrows_the_history_to_the_open_tab_as_the_api_does(alice_client):
    error, resolved = job_failure(JobFactory()), job_failure(JobFactory(job_type="ai_matching"))
    alert_resolve(alert=resolved)

    response = alice_client.get("/alerts/?unacknowledged=1&include_resolved=1")

    assert rows(response) == [error.id]
    page = response.content.decode()
    assert '<a href="/alerts/" aria-current="page">Open</a>' in page
    assert '<input type="checkbox" name="unacknowledged" id="filter-unacknowledged" value="1" checked>' in page


def test_bad_filters_are_a_400_naming_the_field(alice_client):
    response = alice_client.get("/alerts/?severity=panic&alert_type=<b>&include_resolved=maybe&page=0")
    assert response.status_code == 400
    page = response.content.decode()
    for field in ("severity", "alert_type", "include_resolved", "page"):
        assert f"(<code>{field}</code>):" in page
    assert "<b>" not in page.split('<main id="main" tabindex="-1">')[1]


def test_empty_states_say_what_to_do(alice_client):
    assert "No open alerts: nothing needs you." in alice_client.get("/alerts/").content.decode()
    history = alice_client.get("/alerts/?include_resolved=1").content.decode()
    assert "No alert has been raised yet." in history
    assert "No open alerts match these filters." in alice_client.get("/alerts/?severity=info").content.decode()


def test_long_lists_are_paginated(alice_client):
    AlertHistoryFactory.create_batch(51)
    first = alice_client.get("/alerts/")
    assert len(rows(first)) == 50 and "1–50 of <strong>51</strong> open alerts" in first.content.decode()
    assert len(rows(alice_client.get("/alerts/?page=2"))) == 1
    history = alice_client.get("/alerts/?include_resolved=1&page=2")
    assert len(rows(history)) == 1 and history.context["page"].total is None  # the history is not counted


def test_a_history_page_past_the_end_says_so_and_links_to_the_first(alice_client):
    AlertHistoryFactory.create_batch(2)
    response = alice_client.get("/alerts/?include_resolved=1&page=5")
    page = response.content.decode()
    assert response.status_code == 200 and rows(response) == []
    assert "Page 5 is past the end of this list." in page
    assert '<a href="?include_resolved=1">Go to page 1</a>' in page
    assert "No alert has been raised yet" not in page


def test_alert_titles_messages_and_types_are_escaped(alice_client):
    alert = AlertHistoryFactory(title=SCRIPT, message=SCRIPT, alert_type="x")
    delivery = {"kind": "alert", "severity": "error", "recipient": "a@b.c", "channel": "email"}
    NotificationDelivery.objects.create(alert=alert, headline=SCRIPT, last_error=SCRIPT, **delivery)
    for url in ("/alerts/", f"/alerts/{alert.id}/"):
        page = alice_client.get(url).content.decode()
        assert "<script>alert" not in page, url
        assert "&lt;script&gt;alert(" in page, url


def test_polls_get_only_the_list_or_the_alerts_live_part(alice_client):
    alert = job_failure(JobFactory())
    listed = alice_client.get("/alerts/?severity=error", headers=htmx("alert-list")).content.decode()
    assert "<html" not in listed
    assert listed.lstrip().startswith('<section id="alert-list" hx-get="/alerts/?severity=error"')
    assert "every 10s [document.visibilityState === 'visible']" in listed
    assert f'id="alert-{alert.id}"' in listed

    live = alice_client.get(f"/alerts/{alert.id}/", headers=htmx("alert-live")).content.decode()
    assert "<html" not in live and live.lstrip().startswith(f'<div id="alert-live" hx-get="/alerts/{alert.id}/"')
    assert 'id="alert-notice"' not in live  # nothing out of band on a plain poll


def test_a_poll_of_an_alerts_page_brings_the_tabs_title_along(alice_client):
    """Re-check: a warning turned critical; the poll changed the page's heading and the tab kept
    "… is warning" (htmx sets the document's title from a <title> in the answer)."""
    alert = health_alert(severity="warning")
    assert "<title>database is down · Job monitor</title>" in alice_client.get(f"/alerts/{alert.id}/").content.decode()
    AlertHistory.objects.filter(id=alert.id).update(title=f"database is down {SCRIPT}", severity="critical")

    live = alice_client.get(f"/alerts/{alert.id}/", headers=htmx("alert-live")).content.decode()

    escaped = "database is down &lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;"
    assert f"<title>{escaped} · Job monitor</title>" in live
    assert alice_client.get(f"/alerts/{alert.id}/").content.decode().count("<title>") == 1  # the page has its own
    # The whole page asked by htmx (a history restore): its own <title>, none inside <main>.
    assert alice_client.get(f"/alerts/{alert.id}/", headers=htmx("main")).content.decode().count("<title>") == 1


def test_a_viewer_sees_alerts_but_no_acknowledge_or_resolve_button(viewer_client):
    alert = job_failure(JobFactory())
    listed = viewer_client.get("/alerts/").content.decode()
    assert "Resolve" not in listed and "Acknowledge" not in listed
    page = viewer_client.get(f"/alerts/{alert.id}/").content.decode()
    assert 'id="resolve-form"' not in page and f'id="acknowledge-{alert.id}"' not in page


# --- Resolve ---------------------------------------------------------------------------------


def test_resolving_from_the_list_replaces_the_row(alice_client, alice):
    alert = job_failure(JobFactory())

    response = alice_client.post(f"/alerts/{alert.id}/resolve/", headers=htmx(f"alert-{alert.id}"))

    assert response.status_code == 200
    row = response.content.decode()
    assert row.lstrip().startswith(f'<tr role="row" id="alert-{alert.id}" class="alert-row is-resolved">')
    assert "badge-resolved" in row and "by alice" in row and "Resolved." in row and "<button" not in row
    alert.refresh_from_db()
    assert alert.resolved_at is not None and alert.state.resolved_by == "alice"
    # Its notifications still waiting are cancelled (alert_resolve's doing).
    assert set(alert.deliveries.values_list("status", flat=True)) == {DeliveryStatus.CANCELLED}


def test_after_resolving_from_the_list_focus_goes_to_the_rows_message(alice_client):
    """The row swap removed the focused Resolve button: the next Tab went to the logo."""
    alert = job_failure(JobFactory())
    listed = alice_client.get("/alerts/").content.decode()
    assert f'<button type="submit" id="resolve-{alert.id}"' in listed  # polls give its focus back

    row = alice_client.post(f"/alerts/{alert.id}/resolve/", headers=htmx(f"alert-{alert.id}")).content.decode()

    notice = row.split('<p class="notice notice-success row-notice"')[1].split(">")[0]
    assert 'tabindex="-1" autofocus' in notice


@pytest.mark.parametrize("target", ["alert-row", "alert-live"])
def test_resolving_without_a_reason_records_that_it_was_done_on_the_dashboard(alice_client, target):
    """As the API and admin record where a reason-less Resolve came from, from the list or the alert's page."""
    alert = job_failure(JobFactory())
    target = f"alert-{alert.id}" if target == "alert-row" else target

    response = alice_client.post(f"/alerts/{alert.id}/resolve/", {"reason": "  "}, headers=htmx(target))

    assert response.status_code == 200
    alert.refresh_from_db()
    assert (alert.state.resolved_by, alert.state.resolution_reason) == ("alice", "resolved on the dashboard")


def test_resolving_from_the_list_also_updates_its_counts(alice_client, django_assert_max_num_queries):
    """The header said "1–2 of 2 open alerts" next to a row saying "Resolved." until the next poll."""
    alerts = [job_failure(JobFactory(job_type=name)) for name in ("ai_matching", "demo.fail")]
    critical = health_alert()
    shown = "/alerts/?severity=error"  # the list the Resolve is clicked in, with its filters
    assert "1–2 of <strong>2</strong> open alerts" in alice_client.get(shown).content.decode()

    # the resolve (12 on Postgres: whether anybody was told; its locks take the state row, then the
    # alert row), then the list's count, page, open and acknowledged counts; SQLite adds one
    with django_assert_max_num_queries(17):
        response = alice_client.post(
            f"/alerts/{alerts[0].id}/resolve/", {"next": shown}, headers=htmx(f"alert-{alerts[0].id}")
        )

    assert response.status_code == 200
    part = response.content.decode()
    assert part.lstrip().startswith(f'<tr role="row" id="alert-{alerts[0].id}"')  # the row, as before
    counts = part.split('<span id="alert-list-counts" class="list-counts" hx-swap-oob="true">')[1]
    assert "1–1 of <strong>1</strong> open alert\n" in counts
    assert 'title="1 open error alert"' in counts and 'title="1 open critical alert"' in counts
    assert critical.resolved_at is None


def test_a_malformed_next_still_resolves_from_the_list_without_counts(alice_client):
    """`next` (the list's URL, whose counts come with the row) is from the form; a hand-made one
    that is no URL at all ("http://[", an unclosed IPv6 host) was a 500 after the alert was resolved."""
    alert = job_failure(JobFactory())

    not_a_url = {"next": "http://["}
    response = alice_client.post(f"/alerts/{alert.id}/resolve/", not_a_url, headers=htmx(f"alert-{alert.id}"))

    assert response.status_code == 200
    part = response.content.decode()
    assert part.lstrip().startswith(f'<tr role="row" id="alert-{alert.id}"') and "Resolved." in part
    assert 'id="alert-list-counts"' not in part  # no list to count


def test_the_severity_menu_has_no_counts_to_go_stale_the_list_has_them(alice_client):
    """The filter form is outside the polled list: "error (4 open)" stayed after a Resolve from the
    list. The counts beside the list change with the row (above)."""
    job_failure(JobFactory())
    page = alice_client.get("/alerts/").content.decode()
    menu = page.split('<select name="severity" id="filter-severity">')[1].split("</select>")[0]
    assert '<option value="error">error</option>' in menu and "open)" not in menu
    assert 'title="1 open error alert"' in page.split('id="alert-list-counts"')[1]


def test_resolving_from_the_alerts_page_records_the_reason_and_stops_polling(alice_client):
    alert = job_failure(JobFactory())

    response = alice_client.post(
        f"/alerts/{alert.id}/resolve/", {"reason": "restarted the matcher"}, headers=htmx("alert-live")
    )

    assert response.status_code == 200
    part = response.content.decode()
    assert part.lstrip().startswith('<div id="alert-live">')  # no hx-trigger: resolved, nothing to poll
    assert "<strong>Resolution:</strong> restarted the matcher" in part
    assert '<div id="alert-notice" hx-swap-oob="true"' in part and "Resolved." in part
    assert 'id="resolve-form"' not in part


def test_a_resolved_alert_polls_until_its_notifications_are_sent(alice_client):
    """A drill's resolve left the page stopped on its own notice, "Resolved by admin: pending, being
    sent", until a reload: resolved, the alert no longer changes, its notifications still do."""
    alert = job_failure(JobFactory())
    resolved_notice = NotificationDelivery.objects.create(
        alert=alert, kind="resolved", headline="Resolved by alice", recipient="ops@example.com", channel="email"
    )

    resolved = alice_client.post(f"/alerts/{alert.id}/resolve/", headers=htmx("alert-live")).content.decode()
    assert resolved.lstrip().startswith(f'<div id="alert-live" hx-get="/alerts/{alert.id}/"')

    NotificationDelivery.objects.filter(id=resolved_notice.id).update(status=DeliveryStatus.SENT)
    settled = alice_client.get(f"/alerts/{alert.id}/", headers=htmx("alert-live")).content.decode()
    assert settled.lstrip().startswith('<div id="alert-live">')  # nothing left to change


def test_a_second_resolve_is_a_409_that_says_who_did_it(alice_client):
    alert = job_failure(JobFactory())
    alert_resolve(alert=alert, user=UserFactory(username="bob"))

    response = alice_client.post(f"/alerts/{alert.id}/resolve/", headers=htmx(f"alert-{alert.id}"))

    assert response.status_code == 409
    assert "This alert was already resolved by bob." in response.content.decode()


def test_without_javascript_resolve_is_a_post_then_a_redirect_back(alice_client):
    alert = job_failure(JobFactory())
    response = alice_client.post(f"/alerts/{alert.id}/resolve/", {"next": "/alerts/?severity=error"})
    assert response.status_code == 302 and response["Location"] == "/alerts/?severity=error"
    assert "Resolved: demo.sleep job failed" in alice_client.get("/alerts/").content.decode()

    other = job_failure(JobFactory(job_type="ai_matching"))
    response = alice_client.post(f"/alerts/{other.id}/resolve/", {"next": "https://evil.example.com/"})
    assert response["Location"] == f"/alerts/{other.id}/"  # never off-site


@pytest.mark.parametrize("action", ["resolve", "acknowledge"])
def test_actions_are_refused_without_the_permission_a_post_or_the_csrf_token(client, viewer, alice, action):
    alert = job_failure(JobFactory())
    client.force_login(viewer)
    refused = client.post(f"/alerts/{alert.id}/{action}/")
    assert refused.status_code == 403 and b"alerts.change_alerthistory" in refused.content

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(f"/alerts/{alert.id}/{action}/").status_code == 403
    assert Client().post(f"/alerts/{alert.id}/{action}/").status_code == 302  # to the login page
    client.force_login(alice)
    assert client.get(f"/alerts/{alert.id}/{action}/").status_code == 405
    alert.refresh_from_db()
    assert (alert.resolved_at, alert.state.acknowledged_at) == (None, None)  # neither happened


def test_a_too_long_reason_is_a_400_naming_the_field(alice_client):
    alert = job_failure(JobFactory())
    response = alice_client.post(f"/alerts/{alert.id}/resolve/", {"reason": "x" * 2001}, headers=htmx("alert-live"))
    assert response.status_code == 400 and "reason: at most 2000 characters" in response.content.decode()
    alert.refresh_from_db()
    assert alert.resolved_at is None


def test_an_unknown_alert_is_a_404(alice_client):
    missing = "00000000-0000-0000-0000-000000000000"
    assert alice_client.get(f"/alerts/{missing}/").status_code == 404
    assert alice_client.post(f"/alerts/{missing}/resolve/").status_code == 404
    assert alice_client.post(f"/alerts/{missing}/acknowledge/").status_code == 404


# --- Acknowledge -----------------------------------------------------------------------------


def test_acknowledging_from_the_list_replaces_the_row_with_who_and_for_how_long(alice_client):
    alert = job_failure(JobFactory())
    listed = alice_client.get("/alerts/").content.decode()
    assert f'<button type="submit" id="acknowledge-{alert.id}" class="button button-small"' in listed
    assert ">Acknowledge</button>" in listed

    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        response = alice_client.post(
            f"/alerts/{alert.id}/acknowledge/", {"next": "/alerts/?severity=error"}, headers=htmx(f"alert-{alert.id}")
        )

    assert response.status_code == 200
    row = response.content.decode()
    assert row.lstrip().startswith(f'<tr role="row" id="alert-{alert.id}" class="alert-row">')
    assert "Acknowledged until 04:01 UTC: no escalation or repeat notification until then." in row
    assert "✓ acknowledged</span>" in row and "by alice 0.0 s ago, holds escalation and repeats for 1h 00m" in row
    assert ">Renew ack</button>" in row and ">Resolve</button>" in row  # still open: both stay
    # Its forms still post from the list (a Resolve then updates that list's counts), not from here.
    assert row.count('<input type="hidden" name="next" value="/alerts/?severity=error">') == 2
    alert.refresh_from_db()
    assert alert.state.acknowledged_until == NOW + timedelta(minutes=61)


@time_machine.travel(NOW + timedelta(minutes=90), tick=False)
def test_a_lapsed_acknowledgement_says_so_and_offers_acknowledge_again(alice_client, alice):
    alert = job_failure(JobFactory())
    with time_machine.travel(NOW, tick=False):
        alert_acknowledge(alert=alert, user=alice)

    for page in (alice_client.get("/alerts/"), alice_client.get(f"/alerts/{alert.id}/")):
        text = page.content.decode()
        assert "by alice 1h 30m ago, lapsed 30m 00s ago" in text and "✓ acknowledged" not in text
        assert ">Acknowledge</button>" in text


def test_acknowledging_from_the_alerts_page_shows_it_among_the_facts(alice_client):
    alert = job_failure(JobFactory())

    with time_machine.travel(NOW, tick=False):
        response = alice_client.post(f"/alerts/{alert.id}/acknowledge/", headers=htmx("alert-live"))

    part = response.content.decode()
    assert part.lstrip().startswith('<div id="alert-live"')
    assert "<dt>Acknowledged</dt>" in part and "by alice" in part
    assert '<div id="alert-notice" hx-swap-oob="true"' in part and "Acknowledged until 04:00 UTC" in part
    assert 'id="resolve-form"' in part  # acknowledged is not resolved


def test_acknowledging_a_resolved_alert_is_a_409_that_says_who_resolved_it(alice_client):
    alert = job_failure(JobFactory())
    alert_resolve(alert=alert, user=UserFactory(username="bob"))

    response = alice_client.post(f"/alerts/{alert.id}/acknowledge/", headers=htmx(f"alert-{alert.id}"))

    assert response.status_code == 409
    assert "This alert was resolved by bob: nothing to acknowledge." in response.content.decode()


# --- Resolve and Acknowledge on a flapping alert ---------------------------------------------

DATABASE_BACK = {fingerprint("system_health", {"check": "database/connect"}): "Auto-resolved: it answers again."}


def found_resolved_then_reopened(service, times: int):
    """`service` (alert_resolve or alert_acknowledge), reached while the database check flaps, the
    first `times` calls: its condition clears just before the action (auto-resolved: the action
    finds it resolved) and is back before the answer reads it (reopened, flapping). Each time 16
    minutes after the last, so a reopened alert has stayed clear long enough to be resolved again
    (FLAP_MINUTES is 15). Records what each call returned."""

    def flapping(**kwargs):
        if len(flapping.calls) < times:
            with time_machine.travel(NOW + timedelta(minutes=16 * len(flapping.calls)), tick=False):
                alert_manager.resolve_cleared_sync(DATABASE_BACK)
                flapping.calls.append(service(**kwargs))
                alert_manager.process_alert_sync("system_health", "critical", {"check": "database/connect"})
        else:
            flapping.calls.append(service(**kwargs))
        return flapping.calls[-1]

    flapping.calls = []
    return flapping


@pytest.mark.parametrize(
    ("action", "notice"),
    [("resolve", "Resolved."), ("acknowledge", "Acknowledged until 04:00 UTC")],
)
def test_an_alert_reopened_between_the_action_and_the_answer_is_acted_on_again(
    alice_client, monkeypatch, settings, action, notice
):
    """A flapping alert's condition can clear just before the click and be back before the answer:
    it answered 409 "already resolved" beside a row showing it open. It is open: the action runs
    again, as the API's does (alerts.services.alert_act)."""
    settings.ALERTS = {**settings.ALERTS, "FLAP_MINUTES": 15}
    alert = health_alert(minutes_ago=30)
    service = found_resolved_then_reopened({"resolve": alert_resolve, "acknowledge": alert_acknowledge}[action], 1)
    monkeypatch.setattr(monitoring.views.alerts, f"alert_{action}", service)

    with time_machine.travel(NOW, tick=False):
        response = alice_client.post(f"/alerts/{alert.id}/{action}/", headers=htmx(f"alert-{alert.id}"))

    assert response.status_code == 200, response.content
    assert service.calls == [False, True]
    assert notice in response.content.decode()
    alert.refresh_from_db()
    assert alert.state.reopened == 1
    if action == "resolve":
        assert (alert.resolved_at, alert.state.resolved_by) == (NOW, "alice")
    else:
        assert (alert.resolved_at, alert.state.acknowledged_by) == (None, "alice")


def test_an_alert_reopened_each_time_it_is_resolved_is_a_409_saying_so(alice_client, monkeypatch, settings):
    settings.ALERTS = {**settings.ALERTS, "FLAP_MINUTES": 15}
    alert = health_alert(minutes_ago=30)
    service = found_resolved_then_reopened(alert_resolve, 3)
    monkeypatch.setattr(monitoring.views.alerts, "alert_resolve", service)

    with time_machine.travel(NOW, tick=False):
        response = alice_client.post(f"/alerts/{alert.id}/resolve/", headers=htmx(f"alert-{alert.id}"))

    assert response.status_code == 409
    assert service.calls == [False, False, False]
    row = response.content.decode()
    assert "This alert kept changing state (resolved, then reopened by its condition): try again." in row
    assert ">Resolve</button>" in row  # open, as the row shows it
    alert.refresh_from_db()
    assert (alert.resolved_at, alert.state.reopened) == (None, 3)


def test_without_javascript_acknowledge_is_a_post_then_a_redirect_back(alice_client):
    alert = job_failure(JobFactory())
    response = alice_client.post(f"/alerts/{alert.id}/acknowledge/", {"next": "/alerts/?severity=error"})
    assert response.status_code == 302 and response["Location"] == "/alerts/?severity=error"
    assert "demo.sleep job failed: Acknowledged until" in alice_client.get("/alerts/").content.decode()


@pytest.mark.parametrize(
    "alert_type, why",
    [
        ("system_health", ": it is about the system's health, not one job."),
        ("performance_degradation", ": it is about a job type's speed, not one job."),
        ("reports.overdue", "."),  # raised by other code: nothing to presume
    ],
)
def test_an_alert_without_a_job_says_what_it_is_about_only_when_its_type_tells(alice_client, alert_type, why):
    alert = AlertHistoryFactory(alert_type=alert_type, job=None)
    page = alice_client.get(f"/alerts/{alert.id}/").content.decode()
    assert f'<p class="empty">No job is linked to this alert{why}</p>' in page


@pytest.mark.parametrize(
    "alert_type, job_type, link",
    [
        ("system_health", "", '<a id="where-it-shows" href="/health/">The Health page, where it shows →</a>'),
        ("resource_utilization", "", '<a id="where-it-shows" href="/health/">The Health page, where it shows →</a>'),
        (
            "performance_degradation",
            "ai_matching",
            '<a id="where-it-shows" href="/performance/?job_type=ai_matching">ai_matching on the Performance page',
        ),
    ],
)
def test_an_alert_about_no_job_links_the_page_that_shows_what_it_is_about(
    alice_client, client, alert_type, job_type, link
):
    """A drill opened a health alert from its notification, and had no way on to the check it was about."""
    alert = AlertHistoryFactory(alert_type=alert_type, job=None)
    AlertState.objects.create(alert=alert, fingerprint=f"{alert_type}:x", job_type=job_type)

    assert link in alice_client.get(f"/alerts/{alert.id}/").content.decode()
    # Not for a reader who may not open that page.
    client.force_login(UserFactory(permissions=["alerts.view_alerthistory"]))
    assert 'id="where-it-shows"' not in client.get(f"/alerts/{alert.id}/").content.decode()


def test_acknowledging_an_alert_raised_by_other_code_leaves_its_row_as_it_was(alice_client):
    """Its new state row's fingerprint is its own id: the row grew a " · <uuid>" subtitle."""
    alert = AlertHistoryFactory(alert_type="custom", job=None)

    row = alice_client.post(f"/alerts/{alert.id}/acknowledge/", headers=htmx(f"alert-{alert.id}")).content.decode()

    assert "✓ acknowledged" in row
    assert '<div class="muted small"><code>custom</code></div>' in row and f"<code>{alert.id}</code>" not in row


# --- one alert ---------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_one_alerts_page_shows_its_message_jobs_notifications_and_a_resolve_form(alice_client):
    first_job, last_job = JobFactory(job_type="ai_matching"), JobFactory(job_type="ai_matching", failed=True)
    alert = job_failure(first_job, minutes_ago=20, details={"error_class": "transient"})
    job_failure(last_job, minutes_ago=2)
    alert.deliveries.filter(channel="webhook").update(status=DeliveryStatus.FAILED, attempts=6, last_error="HTTP 503")

    response = alice_client.get(f"/alerts/{alert.id}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert f"Job {first_job.id} failed after 3 attempts." in page
    assert "<strong>Latest error:</strong> <code>httpx.ConnectTimeout: timed out (transient)</code>" in page
    assert "&quot;error_class&quot;: &quot;transient&quot;" in page  # what the rule saw
    assert [job["job_id"] for job in response.context["jobs"]] == [last_job.id, first_job.id]
    assert f'href="/jobs/{first_job.id}/"' in page and f'href="/jobs/{last_job.id}/"' in page
    assert "<code>https://hooks.example.com/…</code>" in page and "SECRET" not in page  # a webhook's secret hidden
    assert "HTTP 503" in page
    assert 'id="resolve-form" hx-preserve="true"' in page  # a poll keeps a reason being typed
    # Its field says what it is for in words on the screen, not only in a placeholder that typing hides.
    assert '<label class="resolve-reason">Resolution <input name="reason"' in page
    assert 'hx-get="/alerts/' in page and "every 10s" in page


def test_a_recipient_stored_with_a_port_past_65535_still_shows_with_its_secret_hidden(alice_client):
    """Django's URLValidator let such a webhook through the configuration check; the alert's page
    then was a 500 (urlsplit's port raises ValueError)."""
    webhook = "https://hooks.example.com:99999/T0/SECRET"
    alert = AlertHistoryFactory(recipients=[webhook])
    NotificationDelivery.objects.create(alert=alert, recipient=webhook, kind="alert", channel="webhook")

    response = alice_client.get(f"/alerts/{alert.id}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "https://hooks.example.com:99999/…" in page and "SECRET" not in page


@time_machine.travel(NOW, tick=False)
def test_a_notification_waiting_past_its_due_time_says_how_long_not_in_0_s(alice_client):
    """A reviewer's frozen cluster: a delivery due minutes ago read "next try in 0.0 s"."""
    alert = AlertHistoryFactory()
    pending = {"alert": alert, "kind": "alert", "channel": "email", "status": DeliveryStatus.PENDING}
    NotificationDelivery.objects.create(
        recipient="late@example.com", next_attempt_at=NOW - timedelta(minutes=3), **pending
    )
    NotificationDelivery.objects.create(
        recipient="soon@example.com", next_attempt_at=NOW + timedelta(seconds=30), **pending
    )

    page = alice_client.get(f"/alerts/{alert.id}/").content.decode()

    late = page.split("late@example.com")[1].split("</tr>")[0]
    assert "due 3m 00s ago: is a cluster running (or cluster_watchdog, which sends while none does)?" in late
    assert "next try in 30 s" in page.split("soon@example.com")[1].split("</tr>")[0]


def test_the_job_detail_page_lists_the_alerts_its_failure_was_counted_into(alice_client):
    first, second = JobFactory(job_type="ai_matching", failed=True), JobFactory(job_type="ai_matching", failed=True)
    alert = job_failure(first)
    job_failure(second)

    page = alice_client.get(f"/jobs/{second.id}/").content.decode()

    assert f'<a href="/alerts/{alert.id}/"><strong>ai_matching job failed</strong></a>' in page
    assert "×2" in page and "This job's failure was counted into it." in page


def test_pages_render_in_a_bounded_number_of_queries(alice_client, django_assert_max_num_queries):
    jobs = JobFactory.create_batch(300, job_type="ai_matching", failed=True)
    alert = job_failure(jobs[0])
    AlertOccurrence.objects.bulk_create(AlertOccurrence(alert=alert, job=job) for job in jobs[1:])
    AlertHistoryFactory.create_batch(120)
    for each in AlertHistory.objects.all()[:60]:
        delivery = {"kind": "alert", "severity": "error", "recipient": "a@b.c", "channel": "email"}
        NotificationDelivery.objects.create(alert=each, headline="New", last_error="x", **delivery)

    # session, user, permissions, open counts, acknowledged ones, count, rows
    with django_assert_max_num_queries(7):
        alice_client.get("/alerts/")
    with django_assert_max_num_queries(7):  # ... no count of the history
        alice_client.get("/alerts/?include_resolved=1&page=2", headers=htmx("alert-list"))
    with django_assert_max_num_queries(6):  # session, user, permissions, alert, deliveries, jobs
        response = alice_client.get(f"/alerts/{alert.id}/")
    assert len(response.context["jobs"]) == 10


def test_a_health_alert_shows_its_latest_reading_not_an_error(alice_client):
    """A cpu alert read "Latest error: resource/cpu.percent = 94.9 (warning)": a reading, not an error."""
    with time_machine.travel(NOW, tick=False):
        alert = alert_manager.process_alert_sync(
            "resource_utilization",
            "warning",
            {
                "title": "cpu is warning",
                "check": "resource/cpu.percent",
                "error": "resource/cpu.percent = 94.9 (warning)",
            },
        )

    page = alice_client.get(f"/alerts/{alert.id}/").content.decode()

    assert "<strong>Latest reading:</strong> <code>resource/cpu.percent = 94.9 (warning)</code>" in page
    assert "Latest error" not in page
