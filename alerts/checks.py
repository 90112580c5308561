"""`manage.py check` (and every start) refuses an alert configuration that cannot work."""

from django.conf import settings
from django.core import checks

from alerts.channels import UnknownRecipient, transport_for
from alerts.models import Severity
from alerts.rules import validate_rules


@checks.register()
def check_alert_settings(app_configs=None, **kwargs):
    problems = [checks.Error(message, id="alerts.E001") for message in validate_rules()]
    for key in ("RECIPIENTS", "ESCALATION_RECIPIENTS"):
        for severity, recipients in settings.ALERTS[key].items():
            if severity not in Severity.values:
                problems.append(checks.Error(f"ALERTS[{key!r}]: {severity!r} is not a severity", id="alerts.E002"))
            for recipient in recipients:
                try:
                    transport_for(recipient)
                except UnknownRecipient as e:
                    variable = f"ALERTS_{'ESCALATION_' if key.startswith('ESC') else ''}RECIPIENTS_{severity.upper()}"
                    problems.append(checks.Error(f"{variable}: {e}", id="alerts.E003"))
    for severity in (Severity.ERROR, Severity.CRITICAL):
        # Such an alert is only logged and listed on the dashboard: nobody is paged about it.
        if not settings.ALERTS["RECIPIENTS"].get(severity):
            variable = f"ALERTS_RECIPIENTS_{severity.upper()}"
            problems.append(checks.Warning(f"{variable} is empty: {severity} alerts notify nobody", id="alerts.W001"))
    if settings.ALERTS["ACKNOWLEDGE_MINUTES"] < 1:
        # An acknowledgement that never lapses would hold an unresolved alert's escalation forever.
        minutes = settings.ALERTS["ACKNOWLEDGE_MINUTES"]
        problems.append(checks.Error(f"ALERTS_ACKNOWLEDGE_MINUTES: at least 1, not {minutes}", id="alerts.E004"))
    return problems
