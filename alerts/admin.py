"""Where operators work alerts: filter, search, read the history, resolve."""

import re

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.forms.models import BaseInlineFormSet
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from alerts.channels import display_recipient
from alerts.models import AlertHistory, AlertType, NotificationDelivery
from alerts.selectors import nobody_on_it, with_alert_state
from alerts.services import AlertKeptChanging, acknowledged, alert_acknowledge, alert_act, alert_resolve
from jobs import clock
from jobs.admin import MAX_ACTION_ROWS, CheckedLookupsAdmin, JobIdSearchMixin, KnownValuesFilter
from jobs.errors import ErrorType
from monitoring.permissions import RESOLVE_ALERTS, VIEW_ALERTS, missing_permission
from monitoring.selectors import MAX_ALERT_DELIVERIES

# "django.core.exceptions.ImproperlyConfigured: …" → "ImproperlyConfigured: …"
_QUALIFIED_TYPE = re.compile(r"^[\w.]+\.(\w+: )")


def _when(value):
    """A time as admin shows its fields' (config/formats: 2026-11-29 03:04:05 UTC). On the change
    page admin formats only fields: a method's datetime would read 2026-11-29 03:04:05.655533+00:00."""
    return formats.localize(timezone.template_localtime(value))


class ResolvedFilter(admin.SimpleListFilter):
    """Open alerts unless asked otherwise, as on the dashboard; "All" is one click away."""

    title = "status"
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return [("all", "All"), ("no", "Open"), ("unacknowledged", "Open, not acknowledged"), ("yes", "Resolved")]

    def value(self):
        return super().value() or "no"

    def choices(self, changelist):
        # Admin's own "All" drops the parameter, which here means open: "All" is ?resolved=all.
        counts = self.get_facet_queryset(changelist) if changelist.add_facets else None  # "Show counts"
        for i, (lookup, title) in enumerate(self.lookup_choices):
            if counts is not None:
                title = f"{title} ({counts.get(f'{i}__c', '-')})"
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=True)  # the partial index alert_open_idx
        if self.value() == "unacknowledged":
            return queryset.filter(nobody_on_it(clock.now()))
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


class AlertTypeFilter(KnownValuesFilter):
    # The design's column has no choices; listing the known types avoids a DISTINCT over the history.
    title = "alert type"
    parameter_name = "alert_type"
    values = AlertType.choices


class ErrorClassFilter(KnownValuesFilter):
    # A job failure's class, as its rule recorded it (alerts.rules.job_failure_verdict): the four
    # known classes rather than a DISTINCT over the states' JSON.
    title = "error class"
    parameter_name = "error_class"
    field = "state__details__error_class"
    values = ErrorType.choices


class LatestDeliveries(BaseInlineFormSet):
    """An alert's latest MAX_ALERT_DELIVERIES notifications, as on the dashboard: one repeated for
    weeks has thousands (5,000 rendered here took 6 s and 10 MB). The page links to all of them."""

    def get_queryset(self):
        if not hasattr(self, "_latest"):  # one query: the forms are built from its rows
            self._latest = super().get_queryset()[:MAX_ALERT_DELIVERIES]
        return self._latest


class DeliveryInline(admin.TabularInline):
    model = NotificationDelivery
    formset = LatestDeliveries
    fields = ("created_at", "kind", "channel", "to", "status", "attempts", "next_attempt_at", "sent_at", "last_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-created_at", "-id")
    verbose_name_plural = f"latest {MAX_ALERT_DELIVERIES} notifications (each delivery and its last error)"

    def has_view_permission(self, request, obj=None):
        # As the notification log's own list: whoever may see alerts may see how they were delivered.
        return request.user.has_perm(VIEW_ALERTS)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="to")
    def to(self, delivery):
        return display_recipient(delivery.recipient)


@admin.register(AlertHistory)
class AlertHistoryAdmin(JobIdSearchMixin, CheckedLookupsAdmin):
    # Few, narrow columns: beside the filters a 1280 px window leaves the list about 780 px (admin's
    # sidebar is off, config/urls.py); the three status flags as columns of their own were scrolled
    # out of sight. The error class and the latest error share the title's cell for the same reason.
    list_display = ("title_and_error", "status", "severity", "job_link", "occurrences", "triggered", "last_seen_at")
    list_filter = (
        AlertTypeFilter,
        ErrorClassFilter,
        "severity",
        ResolvedFilter,
        "escalated",
        "notification_sent",
        ("triggered_at", admin.DateFieldListFilter),
    )
    search_fields = ("title", "message", "=job__id")
    date_hierarchy = "triggered_at"
    ordering = ("-triggered_at",)
    actions = ["acknowledge_selected", "resolve_selected"]
    inlines = [DeliveryInline]
    show_full_result_count = False  # no COUNT(*) over the whole history on every page

    def view_on_site(self, obj):
        # The dashboard's page, linked directly. Not a get_absolute_url on the model: that would
        # open admin's /r/ redirect to it, which spells out the request's host and scheme (http
        # behind a TLS-terminating proxy) and answers staff without the permission.
        return reverse("dashboard:alert_detail", args=[obj.id])

    fieldsets = [
        (None, {"fields": ("title", "severity", "alert_type", "message", "job_link", "job_type", "error")}),
        ("Occurrences", {"fields": ("occurrences", "triggered_at", "last_seen_at", "fingerprint", "details")}),
        (
            "Handling",
            {
                "fields": (
                    "is_resolved",
                    "resolved_at",
                    "resolved_by",
                    "resolution_reason",
                    "acknowledgement",
                    "escalated",
                    "escalated_at",
                    "notification_sent",
                    "recipient_list",
                    "last_delivery_error",
                    "all_deliveries",
                )
            },
        ),
    ]
    # History: nobody edits it; it changes only through resolving (alert_resolve), from the list's
    # action or the page's Resolve form (change_form.html here, resolve_view).
    readonly_fields = [
        "title", "severity", "alert_type", "message", "job_link", "job_type", "error", "occurrences", "triggered_at",
        "last_seen_at", "fingerprint", "details", "is_resolved", "resolved_at", "resolved_by", "resolution_reason",
        "acknowledgement", "escalated", "escalated_at", "notification_sent", "recipient_list", "last_delivery_error",
        "all_deliveries",
    ]  # fmt: skip

    def get_queryset(self, request):
        return with_alert_state(super().get_queryset(request)).select_related("state")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Records, read-only for everyone: no Save claiming a change that did not happen. Resolving
        # has its own permission (the model's change permission, RESOLVE_ALERTS).
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Not admin's "view or change": resolving alerts presupposes seeing them (as on the
        # dashboard and the API), so alerts.change_alerthistory alone shows no alert here either.
        return request.user.has_perm(VIEW_ALERTS)

    def has_resolve_permission(self, request):
        # With what it presupposes (seeing alerts): the Resolve URL answers without the list.
        return missing_permission(request.user, RESOLVE_ALERTS) is None

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        resolve = self.admin_site.admin_view(require_POST(self.resolve_view))
        acknowledge = self.admin_site.admin_view(require_POST(self.acknowledge_view))
        # Before admin's own: its <path:object_id>/ would take "<id>/resolve/" for an object id.
        return [
            path("<path:object_id>/resolve/", resolve, name=f"{prefix}_resolve"),
            path("<path:object_id>/acknowledge/", acknowledge, name=f"{prefix}_acknowledge"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_resolve": self.has_resolve_permission(request),
            "acknowledge_minutes": settings.ALERTS["ACKNOWLEDGE_MINUTES"],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def resolve_view(self, request, object_id):
        """The Resolve form of an open alert's page: alert_resolve, then back to the page."""
        if not self.has_resolve_permission(request):
            raise PermissionDenied
        alert = self.get_object(request, unquote(object_id))
        if alert is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        reason = request.POST.get("reason", "").strip() or "resolved in admin"
        acted = self._act(request, alert_resolve, alert, reason=reason)
        if acted is None:
            return self._back_to_page(request, alert)
        resolved, alert = acted  # as the winner left it
        if resolved:
            self.message_user(request, f"The alert “{alert.title}” was resolved.", messages.SUCCESS)
        else:
            by = f"by {alert.resolved_by}" if alert.resolved_by else "automatically (its condition cleared)"
            when = _when(alert.resolved_at)
            message = f"The alert “{alert.title}” was already resolved at {when} {by}."
            self.message_user(request, message, messages.INFO)
        return self._back_to_page(request, alert)

    def acknowledge_view(self, request, object_id):
        """The alert page's Acknowledge (someone is on it): alert_acknowledge, then back to the page.
        The operator who opened the alert takes it there, without going back to tick it in the list."""
        if not self.has_resolve_permission(request):
            raise PermissionDenied
        alert = self.get_object(request, unquote(object_id))
        if alert is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        acted = self._act(request, alert_acknowledge, alert)
        if acted is None:
            return self._back_to_page(request, alert)
        acknowledged_now, alert = acted  # with the state just written
        if acknowledged_now:
            until = _when(alert.acknowledged_until)
            message = f"The alert “{alert.title}” was acknowledged: no escalation or repeat until {until}."
            self.message_user(request, message, messages.SUCCESS)
        else:
            by = f" by {alert.resolved_by}" if alert.resolved_by else ""
            message = (
                f"The alert “{alert.title}” was resolved at {_when(alert.resolved_at)}{by}: nothing to acknowledge."
            )
            self.message_user(request, message, messages.WARNING)
        return self._back_to_page(request, alert)

    def _act(self, request, action, alert, **kwargs) -> tuple[bool, AlertHistory] | None:
        """alerts.services.alert_act, as the dashboard and the API: whether it acted, and the alert
        as it is now. None, said to the operator, when it kept changing (or was deleted)."""
        try:
            acted, current = alert_act(
                action, alert=alert, shown=self.get_queryset(request), user=request.user, **kwargs
            )
        except AlertKeptChanging:
            message = (
                f"The alert “{alert.title}” kept changing state (resolved, then reopened by its condition): try again."
            )
            self.message_user(request, message, messages.WARNING)
            return None
        if current is None:
            self.message_user(request, f"The alert “{alert.title}” no longer exists.", messages.WARNING)
            return None
        return acted, current

    def _back_to_page(self, request, alert):
        page = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[alert.pk])
        context = {"preserved_filters": self.get_preserved_filters(request), "opts": self.opts}
        return redirect(add_preserved_filters(context, page))  # after a POST, a GET (reload-safe)

    @admin.action(description="Resolve selected alerts", permissions=["resolve"])
    def resolve_selected(self, request, queryset):
        # Counted from the ticks: the list shows open alerts by default, so one resolved since the
        # operator loaded it is no longer in `queryset` (all of them: counted before resolving).
        across = request.POST.get("select_across") == "1"
        ticked = queryset.count() if across else len(set(request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)))
        still_open = queryset.filter(resolved_at__isnull=True)
        batch = list(still_open[:MAX_ACTION_ROWS])
        resolved, kept_changing = self._act_on_each(request, alert_resolve, batch, reason="resolved in admin")
        if resolved:  # "Resolved 0 alerts." in green read as success when another had resolved them all
            message = ngettext("Resolved %d alert.", "Resolved %d alerts.", resolved) % resolved
            self.message_user(request, message, messages.SUCCESS)
        left = still_open.count() if len(batch) == MAX_ACTION_ROWS else 0
        self._say_left(request, left)
        self._say_kept_changing(request, kept_changing)
        if skipped := ticked - resolved - left - kept_changing:
            message = ngettext("%d was already resolved.", "%d were already resolved.", skipped) % skipped
            self.message_user(request, message, messages.INFO)

    @admin.action(description="Acknowledge selected alerts (hold escalation and repeats)", permissions=["resolve"])
    def acknowledge_selected(self, request, queryset):
        # Counted from the ticks, as resolve_selected does: resolved ones are left, and said so.
        across = request.POST.get("select_across") == "1"
        ticked = queryset.count() if across else len(set(request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)))
        still_open = queryset.filter(resolved_at__isnull=True)
        resolved = ticked - still_open.count()
        # Those nobody holds first: over MAX_ACTION_ROWS, the next click goes on to the rest instead
        # of renewing the same ones.
        held_last = still_open.order_by(F("state__acknowledged_until").asc(nulls_first=True), "triggered_at")
        batch = list(held_last[:MAX_ACTION_ROWS])
        acknowledged_now, kept_changing = self._act_on_each(request, alert_acknowledge, batch)
        resolved += len(batch) - acknowledged_now - kept_changing  # by someone else since it was read open
        minutes = settings.ALERTS["ACKNOWLEDGE_MINUTES"]
        if acknowledged_now:
            message = ngettext("Acknowledged %d alert", "Acknowledged %d alerts", acknowledged_now) % acknowledged_now
            message += f" for {minutes} min: no escalation or repeat until then."
            self.message_user(request, message, messages.SUCCESS)
        if len(batch) == MAX_ACTION_ROWS:
            self._say_left(request, still_open.filter(nobody_on_it(clock.now())).count())
        self._say_kept_changing(request, kept_changing)
        if resolved:
            message = ngettext(
                "%d was resolved: nothing to acknowledge.", "%d were resolved: nothing to acknowledge.", resolved
            )
            self.message_user(request, message % resolved, messages.WARNING)

    def _act_on_each(self, request, action, batch, **kwargs) -> tuple[int, int]:
        """alerts.services.alert_act on each alert, as the single-alert actions: one found resolved,
        then reopened by its flapping condition, is acted on again rather than counted as resolved.
        Returns (how many it acted on, how many kept changing)."""
        acted = kept_changing = 0
        shown = self.get_queryset(request)
        for alert in batch:
            try:
                acted += alert_act(action, alert=alert, shown=shown, user=request.user, **kwargs)[0]
            except AlertKeptChanging:
                kept_changing += 1
        return acted, kept_changing

    def _say_kept_changing(self, request, kept_changing: int) -> None:
        if kept_changing:
            message = f"{kept_changing} kept changing state (resolved, then reopened by its condition): try again."
            self.message_user(request, message, messages.WARNING)

    def _say_left(self, request, left: int) -> None:
        """Selected alerts one click (MAX_ACTION_ROWS) did not reach."""
        if left:
            message = ngettext("%d more selected alert", "%d more selected alerts", left) % left
            message += f" not touched yet: one click acts on {MAX_ACTION_ROWS} at most; "
            self.message_user(request, message + "select them and run the action again.", messages.WARNING)

    @admin.display(description="title", ordering="title")
    def title_and_error(self, alert):
        """The title over a quiet line: the error class, if any, and the latest error, cut short
        (in full on hover). Two "ai_matching job failed" rows can be timeouts and a missing key."""
        state = self._state(alert)
        error_class = self._error_class(state)
        summary = getattr(state, "error_summary", "")
        if error_class:
            # The rule writes "<module.Type>: <message> (<class>)". The class leads here and the
            # module is noise in three short lines: what is left is the message an operator reads.
            summary = _QUALIFIED_TYPE.sub(r"\1", summary.removesuffix(f" ({error_class})"))
        parts = [format_html("<b>{}</b>", error_class)] if error_class else []
        parts += [Truncator(summary).chars(100)] if summary else []
        if not parts:
            return alert.title
        line = format_html_join(" · ", "{}", ((part,) for part in parts))
        full = getattr(state, "error_summary", "") or error_class
        return format_html('{}<span class="alert-error" title="{}">{}</span>', alert.title, full, line)

    @staticmethod
    def _error_class(state) -> str:
        details = getattr(state, "details", None)
        return str(details.get("error_class") or "") if isinstance(details, dict) else ""

    @admin.display(description="job", ordering="job_id")
    def job_link(self, alert):
        if not alert.job_id:
            return "-"
        url = reverse("admin:jobs_job_change", args=[alert.job_id])
        return format_html('<a href="{}">{} {}</a>', url, alert.job_type, str(alert.job_id)[:8])

    @admin.display(description="count", ordering="occurrences")
    def occurrences(self, alert):
        return alert.occurrences

    @admin.display(description="triggered", ordering="triggered_at")
    def triggered(self, alert):
        # Text, not the datetime: admin keeps a datetime's cell on one line; admin.css lets it wrap.
        return _when(alert.triggered_at)

    @admin.display(description="last seen", ordering="last_seen_at")
    def last_seen_at(self, alert):
        return _when(alert.last_seen_at)

    @admin.display(description="status", ordering="resolved_at")
    def status(self, alert):
        flags = ["resolved" if alert.resolved_at else "open"]
        if not alert.resolved_at and acknowledged(self._state(alert), clock.now()):
            flags.append(f"acknowledged by {alert.acknowledged_by or 'someone'}")
        if alert.escalated:
            flags.append("escalated")
        if alert.notification_sent is False:  # None: raised by other code, unknown
            flags.append("not notified")
        return ", ".join(flags)

    @admin.display(description="resolved", boolean=True, ordering="resolved_at")
    def is_resolved(self, alert):
        return alert.resolved_at is not None

    @admin.display(description="job type")
    def job_type(self, alert):
        return alert.job_type or "-"

    @admin.display(description="error (latest occurrence)")
    def error(self, alert):
        return getattr(self._state(alert), "error_summary", "") or "-"

    @admin.display(description="fingerprint")
    def fingerprint(self, alert):
        return alert.fingerprint or "-"

    @admin.display(description="resolved by")
    def resolved_by(self, alert):
        return alert.resolved_by or "-"

    @admin.display(description="resolution")
    def resolution_reason(self, alert):
        return getattr(self._state(alert), "resolution_reason", "") or "-"

    @admin.display(description="acknowledged")
    def acknowledgement(self, alert):
        if not alert.acknowledged_at:
            return "-"
        by = alert.acknowledged_by or "someone"
        return f"by {by} at {_when(alert.acknowledged_at)}, holding escalation until {_when(alert.acknowledged_until)}"

    @admin.display(description="escalated at")
    def escalated_at(self, alert):
        escalated_at = getattr(self._state(alert), "escalated_at", None)
        return _when(escalated_at) if escalated_at else "-"

    @admin.display(description="what the rule saw")
    def details(self, alert):
        details = getattr(self._state(alert), "details", None) or {}
        return format_html_join(", ", "{}: {}", details.items()) or "-"

    @admin.display(description="recipients")
    def recipient_list(self, alert):
        return ", ".join(display_recipient(r) for r in alert.recipients or []) or "-"

    @admin.display(description="last delivery error")
    def last_delivery_error(self, alert):
        return alert.last_delivery_error or "-"

    @admin.display(description="notifications")
    def all_deliveries(self, alert):
        every_one = f"{reverse('admin:alerts_notificationdelivery_changelist')}?alert__id__exact={alert.id}"
        return format_html('<a href="{}">every notification of this alert</a>', every_one)

    @staticmethod
    def _state(alert):
        try:
            return alert.state
        except AlertHistory.state.RelatedObjectDoesNotExist:
            return None


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(CheckedLookupsAdmin):
    """Every notification and its fate: a channel that is down shows here first."""

    list_display = (
        "created_at", "alert", "headline", "channel", "to", "status", "attempts", "next_attempt_at", "last_error",
    )  # fmt: skip
    list_filter = ("status", "channel", "kind")
    search_fields = ("=alert__id", "alert__title", "last_error")
    list_select_related = ("alert",)
    readonly_fields = [f.name for f in NotificationDelivery._meta.fields if f.name != "recipient"] + ["to"]
    exclude = ("recipient",)
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        # Part of an alert's history: whoever may see alerts may see how they were delivered.
        return request.user.has_perm(VIEW_ALERTS)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="to")
    def to(self, delivery):
        return display_recipient(delivery.recipient)
