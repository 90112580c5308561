"""`manage.py check` (and every management command) reports a wrong health setting at start."""

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register()
def health_settings(app_configs, **kwargs):
    from monitoring.health import expected_jobs, external_services

    errors = []
    for read, error_id in ((external_services, "monitoring.E001"), (expected_jobs, "monitoring.E002")):
        try:
            read()
        except ImproperlyConfigured as e:
            errors.append(Error(str(e), id=error_id))
    return errors
