from django.dispatch import Signal

# Sent after HealthService.run_health_checks stored its results, and after each node stored a
# sample of its own resources (HealthService.sample_node_resources).
# kwargs: results (list of the SystemHealthMetric rows just written, one per component),
#         previous (dict mapping each component, (metric_type, metric_name, host or None) as
#         monitoring.health.component_key gives it, to its status before this run).
health_checked = Signal()
