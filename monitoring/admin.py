from django.contrib import admin

from jobs.admin import ReadOnlyAdminMixin
from monitoring.models import JobExecutionLog, SystemHealthMetric


@admin.register(JobExecutionLog)
class JobExecutionLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("timestamp", "job", "event_type", "status", "progress", "message", "execution_time_ms")
    list_filter = ("event_type", "status")
    search_fields = ("=job__id", "message")
    list_select_related = ("job",)
    readonly_fields = [f.name for f in JobExecutionLog._meta.fields]
    show_full_result_count = False


@admin.register(SystemHealthMetric)
class SystemHealthMetricAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("timestamp", "metric_type", "metric_name", "metric_value", "status")
    list_filter = ("metric_type", "status")
    search_fields = ("metric_name",)
    readonly_fields = [f.name for f in SystemHealthMetric._meta.fields]
    show_full_result_count = False
