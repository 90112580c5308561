from django.contrib import admin, messages

from jobs.admin import (
    CappedCountPaginator,
    CheckedLookupsAdmin,
    JobIdSearchMixin,
    KnownValuesFilter,
    ReadOnlyAdminMixin,
)
from jobs.models import JobStatus
from monitoring.models import ApiToken, JobExecutionLog, SystemHealthMetric
from monitoring.tokens import api_tokens_revoke


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
    show_full_result_count = False


@admin.register(ApiToken)
class ApiTokenAdmin(CheckedLookupsAdmin):
    """Tokens are created with `manage.py create_api_token` (the only time the token is shown);
    here they are listed and revoked. The hash is never shown."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "user__username", "prefix")
    list_select_related = ("user",)
    fields = ("name", "description", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("user", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def lookup_allowed(self, lookup, value, request=None):
        # Admin allows a filter on any field of the model by URL (?token_hash__startswith=fe):
        # an oracle that spells out the hash a character at a time. Never on the hash (a 400).
        if lookup.split("__")[0] == "token_hash":
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = api_tokens_revoke(tokens=queryset)
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)
