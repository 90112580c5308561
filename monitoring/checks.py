"""`manage.py check` (and every management command) reports a wrong health setting at start."""

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register()
def health_settings(app_configs, **kwargs):
    from monitoring.health import external_services

    try:
        external_services()
    except ImproperlyConfigured as e:
        return [Error(str(e), id="monitoring.E001")]
    return []
