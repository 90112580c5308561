"""Rules and routing come from settings; `manage.py check` refuses what cannot work."""

import pytest

from alerts.channels import UnknownRecipient, display_recipient, transport_for
from alerts.checks import check_alert_settings
from alerts.rules import rule_config


def messages(errors):
    return [error.msg for error in errors]


def test_the_defaults_pass_the_check():
    assert check_alert_settings() == []


def test_error_and_critical_alerts_that_would_notify_nobody_are_warned_about(alert_settings):
    """A drill: with the shipped settings (every ALERTS_RECIPIENTS_* empty) a critical alert was
    only logged ("nobody to notify") and listed on the dashboard; start-up said nothing."""
    alert_settings["RECIPIENTS"] = {**alert_settings["RECIPIENTS"], "error": [], "critical": []}
    warnings = check_alert_settings()
    assert {w.id for w in warnings} == {"alerts.W001"}
    assert messages(warnings) == [
        "ALERTS_RECIPIENTS_ERROR is empty: error alerts notify nobody",
        "ALERTS_RECIPIENTS_CRITICAL is empty: critical alerts notify nobody",
    ]


def test_rule_overrides_merge_into_the_defaults(alert_settings):
    alert_settings["RULES"] = {"system_health": {"severity_by_status": {"warning": None}}}
    by_status = rule_config("system_health")["severity_by_status"]
    assert by_status["warning"] is None  # replaced ...
    assert by_status["critical"] == "critical"  # ... the others kept


def test_unknown_rules_settings_and_severities_are_reported(alert_settings):
    alert_settings["RULES"] = {
        "job_failures": {},
        "job_failure": {"severty": "error", "severity_by_error_class": {"data": "fatal"}},
    }
    assert messages(check_alert_settings()) == [
        "ALERTS_RULES: unknown rule 'job_failures'; known: job_failure, performance_degradation, system_health, "
        "resource_utilization",
        "ALERTS_RULES.job_failure: unknown setting 'severty'",
        "ALERTS_RULES.job_failure: 'fatal' is not a severity (info, warning, error, critical)",
    ]


@pytest.mark.parametrize(
    "rule, message",
    [
        # A string "false" is true: the rule stayed on.
        ({"job_failure": {"enabled": "false"}}, "job_failure.enabled must be true or false, not 'false'"),
        # `job_type in "demo.fail"` matched every type whose name is part of the string ("demo" too).
        (
            {"job_failure": {"ignore_job_types": "demo.fail"}},
            "job_failure.ignore_job_types must be a list of job types, not 'demo.fail'",
        ),
        # A number in quotes: the performance check failed on it (TypeError) instead of comparing.
        (
            {"performance_degradation": {"ratio": "3"}},
            "performance_degradation.ratio must be a number, 0 or more, not '3'",
        ),
        ({"performance_degradation": {"window_minutes": -5}}, "window_minutes must be a number, 0 or more, not -5"),
        # The check itself crashed on it, a traceback instead of a message.
        (
            {"system_health": {"severity_by_status": "critical"}},
            "system_health.severity_by_status must be an object, not 'critical'",
        ),
        (
            {"system_health": {"warn_on_second_reading": "job_queue/cluster.workers"}},
            'system_health.warn_on_second_reading must be a list of checks ("job_queue/cluster.workers"), not '
            "'job_queue/cluster.workers'",
        ),
    ],
)
def test_a_rule_setting_of_the_wrong_kind_is_reported(alert_settings, rule, message):
    alert_settings["RULES"] = rule

    [reported] = messages(check_alert_settings())

    assert reported.startswith("ALERTS_RULES.") and reported.endswith(message)


def test_the_documented_overrides_pass(alert_settings):
    alert_settings["RULES"] = {
        "job_failure": {"severity_by_error_class": {"configuration": "critical"}, "repeat_after_minutes": None},
        "performance_degradation": {"ratio": 3, "min_increase_ms": 500.5},
        "system_health": {"severity_by_status": {"warning": None}},
    }
    assert check_alert_settings() == []


def test_a_recipient_that_names_no_channel_is_reported_with_its_variable(alert_settings):
    alert_settings["ESCALATION_RECIPIENTS"]["critical"] = ["oncall"]
    assert messages(check_alert_settings()) == [
        "ALERTS_ESCALATION_RECIPIENTS_CRITICAL: 'oncall' is neither an email address, an http(s) URL nor slack:<URL>"
    ]


@pytest.mark.parametrize(
    "recipient, channel, target",
    [
        ("ops@example.com", "email", "ops@example.com"),
        ("mailto:ops@example.com", "email", "ops@example.com"),
        ("https://hooks.example.com/x", "webhook", "https://hooks.example.com/x"),
        ("slack:https://hooks.slack.com/services/T/B/X", "slack", "https://hooks.slack.com/services/T/B/X"),
    ],
)
def test_a_recipient_string_names_its_channel(recipient, channel, target):
    transport = transport_for(recipient)
    assert (transport.channel, transport.target) == (channel, target)


@pytest.mark.parametrize(
    "recipient",
    [
        "oncall",
        "slack:ops@example.com",
        "ftp://example.com/x",
        "",
        "https://hooks.example.com:99999/x",  # Django's URLValidator takes any 5-digit port
        "http://[x/T0/SECRET",  # an unclosed IPv6 host: was a ValueError out of `manage.py check`
        "slack:http://[::1/x",
    ],
)
def test_anything_else_is_refused(recipient):
    with pytest.raises(UnknownRecipient):
        transport_for(recipient)


@pytest.mark.parametrize(
    "recipient, shown",
    [
        ("ops@example.com", "ops@example.com"),
        ("https://hooks.example.com/T0/SECRET?token=x", "https://hooks.example.com/…"),
        ("slack:https://hooks.slack.com/services/T0/B0/SECRET", "slack:https://hooks.slack.com/…"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("https://user:password@hooks.example.com/x", "https://hooks.example.com/…"),
        ("https://[::1]:8080/x", "https://[::1]:8080/…"),
        # Stored before they were refused: pages showing them were a 500 (ValueError).
        ("https://hooks.example.com:99999/T0/SECRET", "https://hooks.example.com:99999/…"),
        ("slack:http://[x/T0/SECRET", "slack:http://…"),
    ],
)
def test_webhook_secrets_are_hidden_when_a_recipient_is_shown(recipient, shown):
    assert display_recipient(recipient) == shown
