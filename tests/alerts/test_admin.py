"""Operators work alerts in Django admin: through its real views, with and without permission."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from alerts.manager import alert_manager, fingerprint
from alerts.models import AlertHistory, AlertState, DeliveryKind, DeliveryStatus, NotificationDelivery
from alerts.services import alert_acknowledge, alert_act, alert_resolve
from monitoring.selectors import MAX_ALERT_DELIVERIES
from tests.factories import AlertHistoryFactory, JobFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:alerts_alerthistory_changelist")
NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture
def staff(client):
    """Log a user in to admin (admin needs is_staff; permissions come from the user's fixture)."""

    def login(user):
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        client.force_login(user)
        return client

    return login


def job_failure(job_type="ai_matching", title=None):
    job = JobFactory(failed=True, job_type=job_type)
    data = {"title": title or f"{job_type} job failed", "message": f"Job {job.id} failed", "job_id": job.id}
    return alert_manager.process_alert_sync("job_failure", "error", {**data, "job_type": job_type, "error": "E: boom"})


def failed_for(error_class, job_type="ai_matching", error="httpx.ConnectTimeout: timed out"):
    """A job failure alert as its rule raises it: the class in the state's details and fingerprint."""
    error_type, _, message = error.partition(": ")
    last_error = {"type": error_type, "message": message, "error_class": error_class, "fingerprint": "0123456789abcdef"}
    job = JobFactory(failed=True, job_type=job_type, error_class=error_class, last_error=last_error)
    return alert_manager.handle_job_finished(job)


def title_cell(html, alert):
    """The list's first cell of an alert's row: its title, and under it its error."""
    return html.split(f'href="{change_page(alert)}')[1].split("</th>")[0]


def change_page(alert):
    return reverse("admin:alerts_alerthistory_change", args=[alert.id])


def resolve_on_page(client, alert, reason=""):
    return client.post(reverse("admin:alerts_alerthistory_resolve", args=[alert.id]), {"reason": reason}, follow=True)


def resolve_action(client, *alerts):
    return client.post(
        CHANGELIST, {"action": "resolve_selected", "_selected_action": [str(a.id) for a in alerts]}, follow=True
    )


def test_the_list_shows_occurrences_and_links_to_the_job(staff, alice):
    alert = job_failure()
    job_failure()  # counted into the same alert
    response = staff(alice).get(CHANGELIST)
    assert response.status_code == 200
    row = response.context["cl"].result_list[0]
    assert (row.id, row.occurrences) == (alert.id, 2)
    html = response.content.decode()
    assert reverse("admin:jobs_job_change", args=[alert.job_id]) in html
    assert "Resolve selected alerts" in html


def test_an_alerts_admin_page_links_its_dashboard_page(staff, alice):
    alert = job_failure()
    client = staff(alice)

    page = client.get(reverse("admin:alerts_alerthistory_change", args=[alert.id])).content.decode()
    assert f'<a href="/alerts/{alert.id}/" class="viewsitelink">View on dashboard</a>' in page


def test_admin_pages_ask_for_no_favicon_the_server_does_not_have(staff, alice):
    html = staff(alice).get(CHANGELIST).content.decode()

    assert '<link rel="icon" href="data:,">' in html  # else the browser fetches /favicon.ico: a 404
    assert "Select alert to view" in html  # still Django's admin page around it


def test_the_list_shows_open_alerts_by_default_with_all_one_click_away(staff, alice):
    open_alert, resolved = job_failure("a"), job_failure("b")
    alert_resolve(alert=resolved, user=alice, reason="fixed")
    client = staff(alice)

    def listed(query=""):
        response = client.get(f"{CHANGELIST}{query}")
        return response, {a.id for a in response.context["cl"].result_list}

    response, ids = listed()
    assert ids == {open_alert.id}
    assert '<a href="?resolved=all">All</a>' in response.content.decode()
    assert listed("?resolved=all")[1] == {open_alert.id, resolved.id}
    assert listed("?resolved=yes")[1] == {resolved.id}
    assert listed("?resolved=no")[1] == {open_alert.id}
    assert listed("?resolved=unacknowledged")[1] == {open_alert.id}
    alert_acknowledge(alert=open_alert, user=alice)
    assert listed("?resolved=unacknowledged")[1] == set()  # someone is on it
    with_counts = client.get(f"{CHANGELIST}?_facets=True").content.decode()  # admin's "Show counts"
    assert "Open (1)" in with_counts and "Resolved (1)" in with_counts and "All (2)" in with_counts
    assert "Open, not acknowledged (0)" in with_counts


def test_the_list_shows_each_alerts_status_in_one_short_column(staff, alice):
    escalated, _quiet, resolved = job_failure("a"), job_failure("b"), job_failure("c")
    AlertHistory.objects.filter(id=escalated.id).update(escalated=True, notification_sent=True)
    alert_resolve(alert=resolved, user=alice, reason="fixed")
    html = staff(alice).get(CHANGELIST, {"resolved": "all"}).content.decode()

    assert '<td class="field-status">open, escalated</td>' in html
    assert '<td class="field-status">open, not notified</td>' in html
    assert '<td class="field-status">resolved, not notified</td>' in html
    for column in ("column-is_resolved", "column-escalated", "column-notification_sent", "column-alert_type"):
        assert column not in html  # each was a column of its own, too wide for the window together


@pytest.mark.parametrize(
    "query",
    [
        "alert_type=job_failure",
        "error_class=configuration",
        "error_class=not-a-class",
        "severity=error",
        "resolved=no",
        "resolved=unacknowledged",
        "resolved=yes",
        "resolved=all",
        "escalated__exact=0",
        "notification_sent__exact=0",
        "triggered_at__gte=2000-01-01+00:00:00%2B00:00",
        "q=ai_matching",
        "q=not-a-uuid",
    ],
)
def test_every_filter_and_search_works(staff, alice, query):
    job_failure()
    response = staff(alice).get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200


def test_the_list_tells_a_job_failures_error_class_and_latest_error_under_its_title(staff, alice):
    timeouts = failed_for("transient", error="httpx.ConnectTimeout: timed out")
    missing_key = failed_for("configuration", error="django.core.exceptions.ImproperlyConfigured: API key unset")
    html = staff(alice).get(CHANGELIST).content.decode()

    assert timeouts.title == missing_key.title == "ai_matching job failed"
    assert title_cell(html, timeouts) == (
        '">ai_matching job failed<span class="alert-error" title="httpx.ConnectTimeout: timed out (transient)">'
        "<b>transient</b> · ConnectTimeout: timed out</span></a>"
    )
    assert "<b>configuration</b> · ImproperlyConfigured: API key unset</span>" in title_cell(html, missing_key)


def test_the_list_shows_the_latest_error_of_an_alert_without_error_class(staff, alice):
    other = job_failure()  # raised with an error and no class
    html = staff(alice).get(CHANGELIST).content.decode()

    assert title_cell(html, other).endswith('<span class="alert-error" title="E: boom">E: boom</span></a>')


def test_the_list_cuts_a_long_error_short_and_escapes_it(staff, alice):
    alert = failed_for("data", error="ValueError: <script>alert(1)</script> " + "x" * 300)
    cell = title_cell(staff(alice).get(CHANGELIST).content.decode(), alert)

    assert "<script>" not in cell
    assert "ValueError: &lt;script&gt;alert(1)&lt;/script&gt; " + "x" * 300 + ' (data)">' in cell  # in full on hover
    shown = cell.split('">', 2)[2]
    assert shown.startswith("<b>data</b> · ValueError: &lt;script&gt;") and shown.endswith("x…</span></a>")
    assert len(shown) < 200


def test_the_list_filters_by_error_class(staff, alice):
    timeouts, missing_key = failed_for("transient"), failed_for("configuration")
    client = staff(alice)

    def listed(error_class):
        response = client.get(CHANGELIST, {"error_class": error_class})
        assert response.status_code == 200
        return [a.id for a in response.context["cl"].result_list]

    assert listed("transient") == [timeouts.id]
    assert listed("configuration") == [missing_key.id]
    assert listed("data") == []
    assert listed("no-such-class") == []  # not a 500: nothing has it
    html = client.get(CHANGELIST, {"_facets": "True"}).content.decode()  # admin's "Show counts"
    assert "Transient (1)" in html and "Configuration (1)" in html and "System (0)" in html


def test_search_finds_alerts_by_title_message_and_job_id(staff, alice):
    wanted = job_failure("ai_matching")
    job_failure("imports.candidates")
    client = staff(alice)
    for term in ("ai_matching", str(wanted.job_id)):
        results = client.get(CHANGELIST, {"q": term}).context["cl"].result_list
        assert [a.id for a in results] == [wanted.id], term


def test_search_finds_alerts_by_the_short_id_of_their_job(staff, alice):
    # Their titles and messages do not spell the job's id out.
    wanted = AlertHistoryFactory(job=JobFactory(id=uuid.UUID("63644131-0000-4000-8000-000000000001")))
    AlertHistoryFactory(job=JobFactory(id=uuid.UUID("63644132-0000-4000-8000-000000000001")))

    results = staff(alice).get(CHANGELIST, {"q": "63644131"}).context["cl"].result_list
    assert [a.id for a in results] == [wanted.id]


def test_the_list_runs_a_bounded_number_of_queries(staff, alice, django_assert_max_num_queries):
    for n in range(40):
        failed_for("transient", job_type=f"type{n}")
    client = staff(alice)
    with django_assert_max_num_queries(12):
        response = client.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == 40
    assert response.content.decode().count("<b>transient</b> · ConnectTimeout: timed out") == 40  # from the join
    with django_assert_max_num_queries(12):
        filtered = client.get(CHANGELIST, {"error_class": "transient"})
    assert len(filtered.context["cl"].result_list) == 40


def test_an_operator_with_the_permission_resolves_selected_alerts(staff, alice):
    first, second, untouched = job_failure("a"), job_failure("b"), job_failure("c")
    response = resolve_action(staff(alice), first, second)

    assert "Resolved 2 alerts." in response.content.decode()
    for alert in (first, second):
        alert.refresh_from_db()
        assert alert.resolved_at is not None
        state = AlertState.objects.get(alert=alert)
        assert (state.resolved_by, state.resolution_reason) == ("alice", "resolved in admin")
    untouched.refresh_from_db()
    assert untouched.resolved_at is None


@time_machine.travel(NOW, tick=False)
def test_an_operator_acknowledges_selected_alerts_and_the_list_and_page_say_by_whom(staff, alice, viewer):
    first, resolved, untouched = job_failure("a"), job_failure("b"), job_failure("c")
    alert_resolve(alert=resolved, user=alice)
    client = staff(alice)

    selected = {"action": "acknowledge_selected", "_selected_action": [str(first.id), str(resolved.id)]}
    response = client.post(CHANGELIST, selected, follow=True)

    assert "Acknowledged 1 alert for 60 min: no escalation or repeat until then." in response.content.decode()
    assert AlertState.objects.get(alert=first).acknowledged_by == "alice"
    assert AlertState.objects.get(alert=resolved).acknowledged_at is None
    assert AlertState.objects.get(alert=untouched).acknowledged_at is None
    html = client.get(CHANGELIST).content.decode()
    assert '<td class="field-status">open, acknowledged by alice, not notified</td>' in html
    page = client.get(change_page(first)).content.decode()
    assert "by alice at 2026-11-29 03:00:00 UTC, holding escalation until 2026-11-29 04:00:00 UTC" in page

    only_resolved = client.post(CHANGELIST, {**selected, "_selected_action": [str(resolved.id)]}, follow=True)
    said = [str(m) for m in only_resolved.context["messages"]]
    assert said == ["1 was resolved: nothing to acknowledge."]  # no "Acknowledged 0" success

    viewing = staff(viewer)
    assert "Acknowledge selected alerts" not in viewing.get(CHANGELIST).content.decode()
    viewing.post(CHANGELIST, {**selected, "_selected_action": [str(untouched.id)]})
    assert AlertState.objects.get(alert=untouched).acknowledged_at is None


def test_resolving_an_already_resolved_alert_keeps_its_first_resolution(staff, alice):
    alert = job_failure()
    client = staff(alice)
    resolve_action(client, alert)
    first = AlertHistory.objects.get(id=alert.id).resolved_at
    response = resolve_action(client, alert)
    assert "1 was already resolved." in response.content.decode()
    assert "Resolved 0 alerts." not in response.content.decode()  # no success where none was
    assert AlertHistory.objects.get(id=alert.id).resolved_at == first


def test_resolving_every_alert_of_the_list_counts_only_what_it_listed(staff, alice):
    first, _second, resolved = job_failure("a"), job_failure("b"), job_failure("c")
    alert_resolve(alert=resolved, user=alice, reason="fixed")
    response = staff(alice).post(
        CHANGELIST,
        {"action": "resolve_selected", "_selected_action": [str(first.id)], "select_across": "1"},
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["Resolved 2 alerts."]  # the open ones the list showed, not the history
    assert AlertHistory.objects.filter(resolved_at__isnull=True).count() == 0


def test_a_viewer_sees_alerts_but_cannot_resolve_them(staff, viewer):
    alert = job_failure()
    client = staff(viewer)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert "Resolve selected alerts" not in response.content.decode()

    resolve_action(client, alert)
    alert.refresh_from_db()
    assert alert.resolved_at is None


def test_someone_without_view_permission_gets_nothing(staff, nobody):
    alert = job_failure()
    client = staff(nobody)
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(reverse("admin:alerts_alerthistory_change", args=[alert.id])).status_code == 403
    resolve_action(client, alert)
    alert.refresh_from_db()
    assert alert.resolved_at is None


def test_history_is_read_only_cannot_be_added_or_deleted(staff, alice):
    alert = job_failure()
    client = staff(alice)
    assert client.get(reverse("admin:alerts_alerthistory_add")).status_code == 403
    assert client.get(reverse("admin:alerts_alerthistory_delete", args=[alert.id])).status_code == 403
    client.post(reverse("admin:alerts_alerthistory_change", args=[alert.id]), {"title": "edited", "severity": "info"})
    alert.refresh_from_db()
    assert (alert.title, alert.severity) == ("ai_matching job failed", "error")


def test_the_alert_page_shows_state_and_delivery_errors_with_webhook_secrets_hidden(staff, viewer, alert_settings):
    alert_settings["RECIPIENTS"]["error"] = ["ops@example.com", "slack:https://hooks.slack.com/services/T0/B0/SECRET"]
    alert = job_failure(title="<b>not bold</b>")
    slack = alert.deliveries.filter(channel="slack")
    slack.update(status=DeliveryStatus.PENDING, last_error="attempt 1: HTTP 500: oops")
    response = staff(viewer).get(reverse("admin:alerts_alerthistory_change", args=[alert.id]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "attempt 1: HTTP 500: oops" in html
    assert "slack:https://hooks.slack.com/…" in html
    assert "SECRET" not in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html and "<b>not bold</b>" not in html
    assert "job_failure:ai_matching" in html


def test_the_delivery_log_is_browsable_and_read_only(staff, alice):
    job_failure()
    client = staff(alice)
    response = client.get(reverse("admin:alerts_notificationdelivery_changelist") + "?status=pending")
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 1
    assert '<td class="field-headline">New alert</td>' in response.content.decode()  # why it was sent
    assert client.get(reverse("admin:alerts_notificationdelivery_add")).status_code == 403


def test_the_alert_page_shows_its_latest_notifications_and_links_to_all_of_them(staff, django_assert_max_num_queries):
    # An alert repeated for weeks has thousands of notifications: all of them on its page took 6 s
    # and 10 MB (5,000).
    alert = job_failure()
    NotificationDelivery.objects.bulk_create(
        NotificationDelivery(
            alert=alert,
            kind=DeliveryKind.REPEAT,
            headline="Still occurring",
            severity=alert.severity,
            recipient="ops@example.com",
            channel="email",
            status=DeliveryStatus.SENT,
            created_at=NOW - timedelta(minutes=minutes),
        )
        for minutes in range(MAX_ALERT_DELIVERIES + 5)
    )
    # Seeing alerts is enough, as for the notification log's own list.
    client = staff(UserFactory(permissions=["alerts.view_alerthistory"]))

    with django_assert_max_num_queries(8):
        response = client.get(change_page(alert))

    shown = [form.instance for form in response.context["inline_admin_formsets"][0].formset.forms]
    newest = alert.deliveries.order_by("-created_at", "-id")[:MAX_ALERT_DELIVERIES]
    assert [delivery.id for delivery in shown] == [delivery.id for delivery in newest]
    every_one = f"{reverse('admin:alerts_notificationdelivery_changelist')}?alert__id__exact={alert.id}"
    assert f'href="{every_one}"' in response.content.decode()
    assert client.get(every_one).context["cl"].result_count == alert.deliveries.count()


def test_admin_times_are_to_the_second_with_their_zone(staff, alice):
    alert = job_failure()
    AlertHistory.objects.filter(pk=alert.pk).update(triggered_at=datetime(2026, 11, 29, 3, 4, 5, tzinfo=UTC))
    client = staff(alice)

    assert "2026-11-29 03:04:05 UTC" in client.get(CHANGELIST).content.decode()
    page = client.get(reverse("admin:alerts_alerthistory_change", args=[alert.id])).content.decode()
    assert "2026-11-29 03:04:05 UTC" in page


# --- resolving from the alert's page -------------------------------------------------------------


def test_an_open_alerts_page_offers_resolve_and_no_save(staff, alice):
    alert = job_failure()
    client = staff(alice)
    html = client.get(change_page(alert)).content.decode()

    assert reverse("admin:alerts_alerthistory_resolve", args=[alert.id]) in html
    assert 'name="reason"' in html and 'value="Resolve"' in html
    # Its fields are records, never edited: a "Save" would only claim a change that did not happen.
    assert 'name="_save"' not in html and 'name="_continue"' not in html
    saved = client.post(change_page(alert), {"_save": "Save"})
    assert saved.status_code == 403 and b"changed successfully" not in saved.content


def test_an_operator_resolves_an_alert_from_its_page_with_a_reason(staff, alice):
    alert = job_failure()
    response = resolve_on_page(staff(alice), alert, reason="  restarted the matcher  ")

    assert response.redirect_chain == [(change_page(alert), 302)]
    assert f"The alert “{alert.title}” was resolved." in [str(m) for m in response.context["messages"]]
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    state = AlertState.objects.get(alert=alert)
    assert (state.resolved_by, state.resolution_reason) == ("alice", "restarted the matcher")
    assert reverse("admin:alerts_alerthistory_resolve", args=[alert.id]) not in response.content.decode()


def test_resolving_from_the_page_without_a_reason_says_it_was_in_admin(staff, alice):
    alert = job_failure()
    resolve_on_page(staff(alice), alert)

    assert AlertState.objects.get(alert=alert).resolution_reason == "resolved in admin"


def test_resolving_from_the_page_an_alert_resolved_meanwhile_says_when_and_by_whom(staff, alice):
    alert = job_failure()
    with time_machine.travel(datetime(2026, 11, 29, 3, 4, 5, 678_000, tzinfo=UTC), tick=False):
        alert_resolve(alert=alert, user=UserFactory(username="bob"), reason="fixed")

    response = resolve_on_page(staff(alice), alert, reason="me too")

    messages = [str(m) for m in response.context["messages"]]
    assert messages == [f"The alert “{alert.title}” was already resolved at 2026-11-29 03:04:05 UTC by bob."]
    assert AlertState.objects.get(alert=alert).resolution_reason == "fixed"


def test_a_resolved_alerts_page_offers_no_resolve(staff, alice):
    alert = job_failure()
    alert_resolve(alert=alert, user=alice, reason="fixed")

    html = staff(alice).get(change_page(alert)).content.decode()
    assert reverse("admin:alerts_alerthistory_resolve", args=[alert.id]) not in html
    assert 'name="reason"' not in html


def test_a_viewer_gets_no_resolve_on_the_page_and_cannot_post_one(staff, viewer):
    alert = job_failure()
    client = staff(viewer)

    html = client.get(change_page(alert)).content.decode()
    assert 'name="reason"' not in html
    assert resolve_on_page(client, alert).status_code == 403
    alert.refresh_from_db()
    assert alert.resolved_at is None


def test_resolving_from_the_page_takes_only_a_post_with_its_csrf_token(alice):
    alert = job_failure()
    alice.is_staff = True
    alice.save()
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    url = reverse("admin:alerts_alerthistory_resolve", args=[alert.id])

    assert client.get(url).status_code == 405
    assert client.post(url, {"reason": "forged"}).status_code == 403
    alert.refresh_from_db()
    assert alert.resolved_at is None


def test_every_time_on_the_alert_page_has_the_format_of_the_others(staff, alice):
    alert = job_failure()
    at = datetime(2026, 12, 2, 2, 37, 31, 655_533, tzinfo=UTC)
    AlertHistory.objects.filter(pk=alert.pk).update(triggered_at=at, escalated=True)
    AlertState.objects.filter(alert=alert).update(last_seen_at=at, escalated_at=at)
    with time_machine.travel(at, tick=False):
        alert_resolve(alert=alert, user=alice, reason="fixed")

    page = staff(alice).get(change_page(alert)).content.decode()
    assert page.count("2026-12-02 02:37:31 UTC") == 4  # triggered, last seen, escalated, resolved
    assert "655533" not in page and "+00:00" not in page


def said(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


LEFT = "1 more selected alert not touched yet: one click acts on 2 at most; select them and run the action again."


def test_one_click_resolves_a_batch_of_the_alerts_selected_and_says_how_many_are_left(staff, alice, monkeypatch):
    # "Select all" over thousands of alerts outlasted the request (a drill: 1,243 took 7.5 s).
    monkeypatch.setattr("alerts.admin.MAX_ACTION_ROWS", 2)
    first, *_ = job_failure("a"), job_failure("b"), job_failure("c")
    every_one = {"action": "resolve_selected", "_selected_action": [str(first.id)], "select_across": "1"}
    client = staff(alice)

    assert said(client.post(CHANGELIST, every_one, follow=True)) == ["Resolved 2 alerts.", LEFT]
    assert said(client.post(CHANGELIST, every_one, follow=True)) == ["Resolved 1 alert."]
    assert not AlertHistory.objects.filter(resolved_at__isnull=True).exists()


@time_machine.travel(NOW, tick=False)
def test_one_click_acknowledges_a_batch_and_the_next_goes_on_to_those_nobody_holds(staff, alice, monkeypatch):
    monkeypatch.setattr("alerts.admin.MAX_ACTION_ROWS", 2)
    first, *_ = job_failure("a"), job_failure("b"), job_failure("c")
    every_one = {"action": "acknowledge_selected", "_selected_action": [str(first.id)], "select_across": "1"}
    client = staff(alice)
    acknowledged = "Acknowledged 2 alerts for 60 min: no escalation or repeat until then."

    assert said(client.post(CHANGELIST, every_one, follow=True)) == [acknowledged, LEFT]
    assert said(client.post(CHANGELIST, every_one, follow=True)) == [acknowledged]  # the third, and a renewal
    assert not AlertState.objects.filter(acknowledged_at__isnull=True).exists()


def test_resolving_alerts_without_seeing_them_shows_no_alert_in_the_admin(staff):
    """As on the dashboard and the API: alerts.change_alerthistory presupposes
    alerts.view_alerthistory, which admin's own rule ("view or change") would not ask for."""
    client = staff(UserFactory(username="blind", permissions=["alerts.change_alerthistory"]))
    alert = AlertHistoryFactory()

    assert client.get(CHANGELIST).status_code == 403
    assert client.get(change_page(alert)).status_code == 403
    assert resolve_action(client, alert).status_code == 403
    assert resolve_on_page(client, alert, reason="blind").status_code == 403
    alert.refresh_from_db()
    assert alert.resolved_at is None


# --- acknowledging from the alert's page ---------------------------------------------------------


def acknowledge_on_page(client, alert):
    return client.post(reverse("admin:alerts_alerthistory_acknowledge", args=[alert.id]), follow=True)


@time_machine.travel(NOW, tick=False)
def test_an_operator_acknowledges_an_alert_from_its_page(staff, alice):
    """Who opened the alert takes it there: no going back to the list to tick it and pick an action."""
    alert = job_failure()
    client = staff(alice)
    assert 'value="Acknowledge"' in client.get(change_page(alert)).content.decode()

    response = acknowledge_on_page(client, alert)

    assert response.redirect_chain == [(change_page(alert), 302)]
    assert [str(m) for m in response.context["messages"]] == [
        f"The alert “{alert.title}” was acknowledged: no escalation or repeat until 2026-11-29 04:00:00 UTC."
    ]
    state = AlertState.objects.get(alert=alert)
    assert (state.acknowledged_by, state.acknowledged_until) == ("alice", NOW + timedelta(minutes=60))
    html = response.content.decode()
    assert "by alice at 2026-11-29 03:00:00 UTC, holding escalation until 2026-11-29 04:00:00 UTC" in html
    assert 'value="Renew acknowledgement"' in html
    alert.refresh_from_db()
    assert alert.resolved_at is None  # acknowledged, still open


def test_acknowledging_from_the_page_an_alert_resolved_meanwhile_says_so_and_changes_nothing(staff, alice):
    alert = job_failure()
    with time_machine.travel(datetime(2026, 11, 29, 3, 4, 5, tzinfo=UTC), tick=False):
        alert_resolve(alert=alert, user=UserFactory(username="bob"), reason="fixed")

    response = acknowledge_on_page(staff(alice), alert)

    assert [str(m) for m in response.context["messages"]] == [
        f"The alert “{alert.title}” was resolved at 2026-11-29 03:04:05 UTC by bob: nothing to acknowledge."
    ]
    assert AlertState.objects.get(alert=alert).acknowledged_at is None
    assert 'id="acknowledge-form"' not in response.content.decode()  # a resolved alert's page offers neither


DATABASE = {"title": "db down", "check": "database/connect"}


def database_down():
    return alert_manager.process_alert_sync("system_health", "critical", DATABASE)


def flapping_meanwhile(service):
    """`service` (alert_resolve or alert_acknowledge) as it runs while the database check flaps:
    the first time, its condition clears just before (the action finds the alert resolved) and is
    back just after (reopened, FLAP_MINUTES being 15). Records what each call returned."""

    def flapping(**kwargs):
        first = not flapping.calls
        if first:
            alert_manager.resolve_cleared_sync({fingerprint("system_health", DATABASE): "Auto-resolved: back."})
        flapping.calls.append(service(**kwargs))
        if first:
            database_down()
        return flapping.calls[-1]

    flapping.calls = []
    return flapping


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("action", "said"),
    [
        ("resolve", "was resolved."),
        ("acknowledge", "was acknowledged: no escalation or repeat until 2026-11-29 04:00:00 UTC."),
    ],
)
def test_on_its_page_an_alert_reopened_between_the_action_and_the_answer_is_acted_on_again(
    staff, alice, monkeypatch, action, said
):
    """Found resolved, then reopened by its flapping condition: "already resolved at None
    automatically" beside an open alert. It is open: acted on again (alerts.services.alert_act)."""
    import alerts.admin

    alert = database_down()
    service = flapping_meanwhile({"resolve": alert_resolve, "acknowledge": alert_acknowledge}[action])
    monkeypatch.setattr(alerts.admin, f"alert_{action}", service)

    response = staff(alice).post(reverse(f"admin:alerts_alerthistory_{action}", args=[alert.id]), follow=True)

    assert [str(m) for m in response.context["messages"]] == [f"The alert “db down” {said}"]
    assert service.calls == [False, True]
    state = AlertState.objects.get(alert=alert)
    assert state.reopened == 1
    assert (state.resolved_by, state.acknowledged_by) == (("alice", "") if action == "resolve" else ("", "alice"))


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("resolve", "Resolved 1 alert."),
        ("acknowledge", "Acknowledged 1 alert for 60 min: no escalation or repeat until then."),
    ],
)
def test_selected_an_alert_reopened_between_the_action_and_the_answer_is_acted_on_again(
    staff, alice, monkeypatch, action, expected
):
    """The bulk actions as the alert's page: found resolved, then reopened by its flapping
    condition, it was counted "already resolved" (or "resolved: nothing to acknowledge") although
    it is open. Acted on again (alerts.services.alert_act), it is counted as acted on."""
    import alerts.admin

    alert = database_down()
    service = flapping_meanwhile({"resolve": alert_resolve, "acknowledge": alert_acknowledge}[action])
    monkeypatch.setattr(alerts.admin, f"alert_{action}", service)

    selected = {"action": f"{action}_selected", "_selected_action": [str(alert.id)]}
    response = staff(alice).post(CHANGELIST, selected, follow=True)

    assert said(response) == [expected]
    assert service.calls == [False, True]
    state = AlertState.objects.get(alert=alert)
    assert state.reopened == 1
    assert (state.resolved_by, state.acknowledged_by) == (("alice", "") if action == "resolve" else ("", "alice"))


@pytest.mark.parametrize("action", ["resolve", "acknowledge"])
def test_selected_alerts_that_kept_changing_are_counted_apart_to_try_again(staff, alice, monkeypatch, action):
    """Neither acted on nor resolved: the operator is told to try again, not that they were resolved."""
    import alerts.admin
    from alerts.services import AlertKeptChanging

    flapping, steady = database_down(), job_failure()

    def kept_changing_for_the_database(action, *, alert, shown, **kwargs):
        if alert.id == flapping.id:
            raise AlertKeptChanging(alert)
        return alert_act(action, alert=alert, shown=shown, **kwargs)

    monkeypatch.setattr(alerts.admin, "alert_act", kept_changing_for_the_database)
    selected = {"action": f"{action}_selected", "_selected_action": [str(flapping.id), str(steady.id)]}

    messages = said(staff(alice).post(CHANGELIST, selected, follow=True))

    assert messages[1:] == ["1 kept changing state (resolved, then reopened by its condition): try again."]
    assert messages[0].startswith({"resolve": "Resolved 1 alert.", "acknowledge": "Acknowledged 1 alert "}[action])


def test_a_viewer_gets_no_acknowledge_on_the_page_and_cannot_post_one(staff, viewer):
    alert = job_failure()
    client = staff(viewer)

    assert 'id="acknowledge-form"' not in client.get(change_page(alert)).content.decode()
    assert acknowledge_on_page(client, alert).status_code == 403
    assert AlertState.objects.get(alert=alert).acknowledged_at is None
    assert staff(viewer).get(reverse("admin:alerts_alerthistory_acknowledge", args=[alert.id])).status_code == 405


def test_an_alert_resolved_by_someone_else_while_the_acknowledge_action_runs_is_said_to_be_resolved(staff, alice):
    """Resolved after the action listed it as open: its acknowledgement is refused, and the
    operator is told so rather than left with no message at all."""
    from django.db import connection

    alert = job_failure("a")
    client = staff(alice)
    someone_else = []

    def resolved_by_bob_once_listed(execute, sql, params, many, context):
        # Just before the acknowledgement checks the alert is open: after the action read it open.
        if 'AS "a" FROM "alert_history"' in sql and not someone_else:
            someone_else.append("resolving")  # its own queries pass through here too
            someone_else[0] = alert_resolve(alert=alert, user=None, reason="fixed")
        return execute(sql, params, many, context)

    selected = {"action": "acknowledge_selected", "_selected_action": [str(alert.id)]}
    with connection.execute_wrapper(resolved_by_bob_once_listed):
        response = client.post(CHANGELIST, selected, follow=True)

    assert someone_else == [True]
    assert [str(m) for m in response.context["messages"]] == ["1 was resolved: nothing to acknowledge."]
    assert AlertState.objects.get(alert=alert).acknowledged_at is None
