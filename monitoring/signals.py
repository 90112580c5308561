from django.dispatch import Signal

# Sent after HealthService.run_health_checks stored its results.
# kwargs: results (list of the SystemHealthMetric rows just written, one per component),
#         previous (dict mapping (metric_type, metric_name) to the status before this run).
health_checked = Signal()
