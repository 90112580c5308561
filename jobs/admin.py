import re

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import ngettext

from jobs.errors import ErrorType
from jobs.manager import JobStateConflict, job_manager
from jobs.models import ACTIVE_STATUSES, RETRYABLE_STATUSES, Job, JobRetryHistory, JobTypePause
from jobs.notices import resume_outcome
from jobs.registry import registered_job_types
from monitoring.permissions import CONTROL_JOBS, VIEW_JOBS
from monitoring.selectors import filter_by_id_prefix, with_held_jobs

ID_PREFIX = re.compile(r"[0-9a-fA-F-]+")
MIN_ID_PREFIX_DIGITS = 4  # fewer are more likely a word searched as text ("add", "bad") than an id
SHORT_ID_DIGITS = 8  # the short id shown everywhere
# Rows one admin action acts on per click, each a few queries: "select all" over thousands would
# outlast the request's timeout (a drill resolved 1,243 alerts in 7.5 s); what is left is said.
MAX_ACTION_ROWS = 500
MAX_ACTION_WARNINGS = 3  # races reported one by one; more are counted


class CheckedChangeList(ChangeList):
    """A list filter the database cannot take, typed into the URL (?created_at__year=10000: "year
    10000 is out of range", raised only once the query is compiled), is the admin's own "incorrect
    lookup" redirect (?e=1), as a bad date drill-down is, rather than a 500."""

    def get_queryset(self, request, exclude_parameters=None):
        rows = super().get_queryset(request, exclude_parameters)
        try:
            str(rows.query)  # compiles it, without running it
        except EmptyResultSet:
            # A filter nothing can match (?id__exact= past any integer): running the query says
            # so without asking the database (an empty list); only compiling it raises.
            pass
        except (ValueError, OverflowError) as e:
            raise IncorrectLookupParameters(e) from e
        return rows

    def get_ordering(self, request, queryset):
        # A column the list does not offer to sort by (sortable_by) is not sorted by a hand-made ?o=
        # either: the list keeps its own order.
        if ORDER_VAR in self.params:
            offered = [part for part in self.params[ORDER_VAR].split(".") if self._offered(part)]
            if offered:
                self.params[ORDER_VAR] = ".".join(offered)
            else:
                del self.params[ORDER_VAR]
        return super().get_ordering(request, queryset)

    def _offered(self, part: str) -> bool:
        """Is `part` of ?o= ("3", "-3": the fourth column) a column the list offers to sort by?"""
        try:
            return self.list_display[int(part.rpartition("-")[2])] in self.sortable_by
        except (IndexError, ValueError):
            return False


# The rows a list counts, at most: past them it says "or more" (templates/admin/capped_pagination.html).
MAX_COUNTED_ROWS = 10_000


class CappedCountPaginator(Paginator):
    """Counts the rows up to MAX_COUNTED_ROWS only, where admin's COUNT(*) read every row on each
    page (the events: 0.4 s at 5 million, and growing); so also the last page linked is an offset
    of 10,000 at most, not of millions. Counted in no order (the count does not depend on it): a
    filter matching few rows is counted in one pass, not by reading the whole list's index in order
    (events whose job failed: 166 ms, 237 ms ordered). The model's admin template folder needs a
    pagination.html including capped_pagination.html, which says "or more"."""

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[:MAX_COUNTED_ROWS].count()

    @property
    def capped(self) -> bool:
        return self.count >= MAX_COUNTED_ROWS


class KnownValuesFilter(admin.SimpleListFilter):
    """A list filter offering a field's known values (`values`: choices) where admin's own would
    run a DISTINCT over every row of the table on each page. `field` is parameter_name unless set."""

    values = ()
    field = None

    def lookups(self, request, model_admin):
        return self.values

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field or self.parameter_name: self.value()}) if self.value() else queryset


class CheckedLookupsAdmin(admin.ModelAdmin):
    """The project's admin pages: each list's hand-made filters are checked (CheckedChangeList)."""

    def get_changelist(self, request, **kwargs):
        return CheckedChangeList


class ReadOnlyAdminMixin:
    """Jobs change only through the job manager, never by editing rows."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class JobIdSearchMixin:
    """A search for hex digits and dashes also finds the rows whose job id starts with them: the
    short id the dashboard shows (its first 8 digits) finds its job, as the dashboard's search does.
    With `job_id_search_only`, a short id or more finds only those rows: the text fields are not
    searched for it (on a table of millions, their scan made a search by job id take seconds);
    fewer digits may be a word ("added", "decade") and search the text fields too."""

    job_id_field = "job_id"
    job_id_search_only = False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        digits = term.replace("-", "")
        if not (ID_PREFIX.fullmatch(term) and MIN_ID_PREFIX_DIGITS <= len(digits) <= 32):
            return super().get_search_results(request, queryset, search_term)
        by_id = filter_by_id_prefix(queryset, digits, field=self.job_id_field)
        if self.job_id_search_only and len(digits) >= SHORT_ID_DIGITS:
            return by_id, False
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return found | by_id, may_have_duplicates


class AttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = JobRetryHistory
    fields = ("attempt_number", "status", "started_at", "completed_at", "retry_delay_seconds", "error_message")
    readonly_fields = fields
    extra = 0


class JobTypeFilter(KnownValuesFilter):
    # The job types registered, as the dashboard's Jobs page offers them, rather than a DISTINCT
    # over every job on each page (80 ms at 200,000 jobs); another is still ?job_type=<name>.
    title = "job type"
    parameter_name = "job_type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in registered_job_types()]


class JobErrorClassFilter(KnownValuesFilter):
    # The four classes jobs.errors gives, rather than a DISTINCT over every job (90 ms at 200,000).
    title = "error class"
    parameter_name = "error_class"
    values = ErrorType.choices


@admin.register(Job)
class JobAdmin(JobIdSearchMixin, ReadOnlyAdminMixin, CheckedLookupsAdmin):
    job_id_field = "id"
    list_display = (
        "id", "job_type", "status", "progress", "attempts", "error_class", "created_at", "updated_at", "worker",
    )  # fmt: skip
    list_filter = ("status", JobTypeFilter, JobErrorClassFilter)
    # Newest submitted first, read in order from jobs_created_idx. Not the model's "newest activity
    # first" (updated_at): no index has it for the whole history, so every page sorted every job,
    # and running jobs moved between pages while an operator paged through them.
    ordering = ("-created_at",)
    # Sorting by another column sorted every job, as on the events' list.
    sortable_by = ("created_at",)
    search_fields = ("=id", "job_type", "message")
    readonly_fields = [f.name for f in Job._meta.fields]
    inlines = [AttemptInline]
    actions = ["cancel_jobs", "retry_jobs"]
    paginator = CappedCountPaginator
    show_full_result_count = False  # no COUNT(*) over the whole history on every page
    show_facets = admin.ShowFacets.NEVER  # "Show counts" counted every job once per filter choice

    def view_on_site(self, obj):
        # The dashboard's page, linked directly. Not a get_absolute_url on the model: that would
        # open admin's /r/ redirect to it, which spells out the request's host and scheme (http
        # behind a TLS-terminating proxy) and answers staff without the permission.
        return reverse("dashboard:job_detail", args=[obj.id])

    def has_view_permission(self, request, obj=None):
        # Not admin's "view or change": controlling jobs presupposes seeing them (as on the
        # dashboard and the API), so jobs.change_job alone shows no job here either.
        return request.user.has_perm(VIEW_JOBS)

    def _act(self, request, queryset, operation, verb, *, acts_on, rule):
        """`operation` on the selected jobs in a status in `acts_on`, MAX_ACTION_ROWS at a time;
        the others are counted under `rule`, and those left for another click said."""
        actionable = queryset.filter(status__in=acts_on)
        batch = list(actionable.values_list("id", flat=True)[:MAX_ACTION_ROWS])
        # Before acting moves the batch among them; the batch left out: one of it changed meanwhile
        # (another operator) is reported below as a conflict, not counted here as well.
        others = queryset.exclude(id__in=batch).exclude(status__in=acts_on).count()
        done, conflicts = 0, []
        for job_id in batch:
            try:
                operation(job_id, by=request.user.get_username())
                done += 1
            except JobStateConflict as e:  # it changed state since it was listed
                conflicts.append(str(e))
        if done:
            message = ngettext("%(verb)s %(n)d job.", "%(verb)s %(n)d jobs.", done) % {"verb": verb, "n": done}
            self.message_user(request, message, messages.SUCCESS)
        for conflict in conflicts[:MAX_ACTION_WARNINGS]:
            self.message_user(request, conflict, messages.WARNING)
        if len(conflicts) > MAX_ACTION_WARNINGS:
            self.message_user(request, f"and {len(conflicts) - MAX_ACTION_WARNINGS} more like these.", messages.WARNING)
        if len(batch) == MAX_ACTION_ROWS and (left := actionable.exclude(id__in=batch).count()):
            message = ngettext("%d more selected job", "%d more selected jobs", left) % left
            message += f" not touched yet: one click acts on {MAX_ACTION_ROWS} at most; "
            message += "select them and run the action again."
            self.message_user(request, message, messages.WARNING)
        if others:
            message = ngettext("%d selected job left as it is", "%d selected jobs left as they are", others) % others
            self.message_user(request, f"{message}: {rule}.", messages.WARNING)

    @admin.action(description="Cancel selected jobs", permissions=["cancel"])
    def cancel_jobs(self, request, queryset):
        rule = "only queued, running or retrying jobs can be cancelled"
        self._act(request, queryset, job_manager.cancel_job_sync, "Cancelled", acts_on=ACTIVE_STATUSES, rule=rule)

    @admin.action(description="Retry selected jobs", permissions=["cancel"])
    def retry_jobs(self, request, queryset):
        rule = "only failed, cancelled or retrying jobs can be retried"
        self._act(request, queryset, job_manager.retry_job_sync, "Queued again", acts_on=RETRYABLE_STATUSES, rule=rule)

    def has_cancel_permission(self, request):
        return request.user.has_perm("jobs.change_job")


@admin.register(JobTypePause)
class JobTypePauseAdmin(ReadOnlyAdminMixin, CheckedLookupsAdmin):
    """The paused job types. Paused from the Jobs page or the API; resumed here by the action,
    which enqueues the jobs each held, never by deleting the row (they would wait for the
    lost-job sweep)."""

    list_display = ("job_type", "paused_by", "paused_at", "reason", "held")
    readonly_fields = ("job_type", "paused_by", "paused_at", "reason", "held")
    actions = ["resume_job_types"]

    def get_queryset(self, request):
        return with_held_jobs(super().get_queryset(request))

    @admin.display(description="jobs held")
    def held(self, pause):
        return pause.held

    @admin.action(description="Resume selected job types", permissions=["control"])
    def resume_job_types(self, request, queryset):
        job_types = list(queryset.values_list("job_type", flat=True))
        if not job_types:  # the rows selected on the page are gone
            self.message_user(request, "Nothing resumed: not paused any more (someone resumed them?).", messages.INFO)
        for job_type in job_types:
            held = job_manager.resume_job_type_sync(job_type, by=request.user.get_username())
            level, outcome = resume_outcome(job_type, held)
            self.message_user(request, outcome, level)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(VIEW_JOBS)

    def has_control_permission(self, request):
        return request.user.has_perm(CONTROL_JOBS)
