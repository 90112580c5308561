from django.contrib import admin, messages
from django.urls import reverse

from jobs.manager import JobStateConflict, job_manager
from jobs.models import Job, JobRetryHistory


class ReadOnlyAdminMixin:
    """Jobs change only through the job manager, never by editing rows."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = JobRetryHistory
    fields = ("attempt_number", "status", "started_at", "completed_at", "retry_delay_seconds", "error_message")
    readonly_fields = fields
    extra = 0


@admin.register(Job)
class JobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "job_type", "status", "progress", "attempts", "error_class", "updated_at", "worker")
    list_filter = ("status", "job_type", "error_class")
    search_fields = ("=id", "job_type", "message")
    readonly_fields = [f.name for f in Job._meta.fields]
    inlines = [AttemptInline]
    actions = ["cancel_jobs", "retry_jobs"]
    show_full_result_count = False  # no COUNT(*) over the whole history on every page

    def view_on_site(self, obj):
        # The dashboard's page, linked directly. Not a get_absolute_url on the model: that would
        # open admin's /r/ redirect to it, which spells out the request's host and scheme (http
        # behind a TLS-terminating proxy) and answers staff without the permission.
        return reverse("dashboard:job_detail", args=[obj.id])

    def _act(self, request, queryset, operation, verb):
        done = 0
        for job in queryset:
            try:
                operation(job.id, by=request.user.get_username())
                done += 1
            except JobStateConflict as e:
                self.message_user(request, str(e), messages.WARNING)
        if done:
            self.message_user(request, f"{verb} {done} job(s).", messages.SUCCESS)

    @admin.action(description="Cancel selected jobs", permissions=["cancel"])
    def cancel_jobs(self, request, queryset):
        self._act(request, queryset, job_manager.cancel_job_sync, "Cancelled")

    @admin.action(description="Retry selected jobs", permissions=["cancel"])
    def retry_jobs(self, request, queryset):
        self._act(request, queryset, job_manager.retry_job_sync, "Queued again")

    def has_cancel_permission(self, request):
        return request.user.has_perm("jobs.change_job")
