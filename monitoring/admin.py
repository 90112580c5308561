from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.utils.formats import localize
from django.utils.timezone import localtime
from django.utils.translation import ngettext

from jobs import clock
from jobs.admin import (
    CappedCountPaginator,
    CheckedLookupsAdmin,
    JobIdSearchMixin,
    KnownValuesFilter,
    ReadOnlyAdminMixin,
)
from jobs.models import JobStatus
from monitoring.models import ApiToken, JobExecutionLog, SystemHealthMetric, TokenStatus
from monitoring.tokens import api_tokens_revoke, token_status_q


class EventStatusFilter(KnownValuesFilter):
    # The job's status at the event (a DISTINCT over the events scanned all of them on each page).
    title = "status"
    parameter_name = "status"
    values = JobStatus.choices


@admin.register(JobExecutionLog)
class JobExecutionLogAdmin(JobIdSearchMixin, ReadOnlyAdminMixin, CheckedLookupsAdmin):
    list_display = ("timestamp", "job", "event_type", "status", "progress", "message", "execution_time_ms")
    list_filter = ("event_type", EventStatusFilter)
    # A job's short id or more finds that job's events through the (job, timestamp) index; other
    # words search the messages, a scan of every event.
    search_fields = ("message",)
    job_id_search_only = True
    list_select_related = ("job",)
    readonly_fields = [f.name for f in JobExecutionLog._meta.fields]
    paginator = CappedCountPaginator
    ordering = ("-timestamp",)  # the latest first: the count stops at MAX_COUNTED_ROWS, so the pages reach them
    show_full_result_count = False
    # Sorting by any other column sorted every event (3 to 5 s at 5 million); "Show counts" counted
    # every event once per filter choice.
    sortable_by = ("timestamp",)
    show_facets = admin.ShowFacets.NEVER


@admin.register(SystemHealthMetric)
class SystemHealthMetricAdmin(ReadOnlyAdminMixin, CheckedLookupsAdmin):
    list_display = ("timestamp", "metric_type", "metric_name", "metric_value", "status")
    list_filter = ("metric_type", "status")
    search_fields = ("metric_name",)
    readonly_fields = [f.name for f in SystemHealthMetric._meta.fields]
    # A row per component per check: 30 days kept are about 700,000 rows, which admin's COUNT(*)
    # read on every page (60-90 ms, filtered or not); counted up to MAX_COUNTED_ROWS instead.
    paginator = CappedCountPaginator
    ordering = ("-timestamp",)  # the latest first (health_time_idx): the capped pages reach them
    show_full_result_count = False
    # As on the events' list: another column sorted every row, "Show counts" counted every row
    # once per filter choice.
    sortable_by = ("timestamp",)
    show_facets = admin.ShowFacets.NEVER


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return TokenStatus.choices

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if self.value() not in TokenStatus.values:
            raise IncorrectLookupParameters(f"unknown status {self.value()!r}")
        return queryset.filter(token_status_q(self.value(), clock.now()))


class ApiTokenForm(forms.ModelForm):
    """The expiry can be brought forward (a token that may have leaked), never pushed back or
    removed: a token that needs longer is a new token, as with GitHub's personal access tokens.
    A moment already past is taken as now, so the row keeps saying when the token really stopped."""

    class Meta:
        model = ApiToken
        fields = ("name", "description", "expires_at")
        help_texts = {
            "expires_at": "Can be brought forward (“Now” ends it at once), not extended: a token that "
            "needs longer is a new token (manage.py create_api_token)."
        }

    def clean_expires_at(self):
        new, old = self.cleaned_data["expires_at"], self.instance.expires_at
        if new == old:
            return new
        if new is None:
            raise forms.ValidationError("An expiry cannot be removed: create a new token that never expires.")
        if old is not None and new > old:
            when = localize(localtime(old))
            raise forms.ValidationError(f"An expiry can be brought forward, not extended past {when}.")
        return max(new, clock.now())


@admin.register(ApiToken)
class ApiTokenAdmin(CheckedLookupsAdmin):
    """Tokens are created with `manage.py create_api_token` (the only time the token is shown);
    here they are listed and revoked. The hash is never shown."""

    form = ApiTokenForm
    list_display = ("name", "user", "prefix", "status", "created_at", "last_used_at", "expires", "revoked_at")
    list_filter = (TokenStatusFilter, ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "user__username", "prefix")
    list_select_related = ("user",)
    fields = (
        "name",
        "description",
        "user",
        "prefix",
        "status",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    readonly_fields = ("user", "prefix", "status", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def get_readonly_fields(self, request, obj=None):
        # Once expired or revoked, the expiry is what happened: it stays as it was.
        if obj is not None and obj.status(clock.now()) in (TokenStatus.EXPIRED, TokenStatus.REVOKED):
            return (*self.readonly_fields, "expires_at")
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        # Only what the form changed: the whole row would write back a last_used_at or revoked_at
        # read before another process moved it (a token revoked meanwhile would work again).
        obj.save(update_fields=form.changed_data if change else None)

    @admin.display(description="status")
    def status(self, obj):
        return TokenStatus(obj.status(clock.now())).label

    @admin.display(description="expires at", ordering="expires_at", empty_value="never")
    def expires(self, obj):
        return obj.expires_at

    def lookup_allowed(self, lookup, value, request=None):
        # Admin allows a filter on any field of the model by URL (?token_hash__startswith=fe):
        # an oracle that spells out the hash a character at a time. Never on the hash (a 400).
        if lookup.split("__")[0] == "token_hash":
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = api_tokens_revoke(tokens=queryset)
        self.message_user(
            request, ngettext("Revoked %d token.", "Revoked %d tokens.", revoked) % revoked, messages.SUCCESS
        )
