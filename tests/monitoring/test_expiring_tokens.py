"""Health: API tokens in use that are about to expire (job_queue/api_tokens.expiring), a warning
days ahead, so an integration does not stop with a 401 at 3 a.m."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from alerts.models import AlertHistory
from monitoring.health import health_service
from monitoring.tokens import api_tokens_expiring_in_use
from tests.factories import ApiTokenFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
USED = NOW - timedelta(hours=1)


def reading():
    with time_machine.travel(NOW, tick=False):
        (component,) = health_service.check_api_tokens_sync()["components"]
    return component


def test_no_token_in_use_about_to_expire_is_healthy(db):
    ApiTokenFactory(last_used_at=USED, expires_at=NOW + timedelta(days=8))

    component = reading()

    assert (component["metric_type"], component["metric_name"]) == ("job_queue", "api_tokens.expiring")
    assert (component["status"], component["metric_value"]) == ("healthy", 0)
    assert component["details"]["message"] == "no API token used in the last 30 days expires within 7 days"


def test_one_token_expiring_is_said_in_the_singular(db):
    ApiTokenFactory(
        user=UserFactory(username="alice"), name="ci deploy", last_used_at=USED, expires_at=NOW + timedelta(days=1)
    )

    assert reading()["details"]["message"] == (
        "1 API token used in the last 30 days expires within 7 days or has expired: 'ci deploy' of alice "
        "(expires in 1d 0h); its program gets 401 once it expires: give it a new token "
        "(manage.py create_api_token), then revoke this one"
    )


def test_a_token_in_use_expiring_within_7_days_is_a_warning_naming_it_and_its_owner(db):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    ApiTokenFactory(user=alice, name="ci deploy", last_used_at=USED, expires_at=NOW + timedelta(days=2, hours=3))
    ApiTokenFactory(user=bob, name="nightly import", last_used_at=USED, expires_at=NOW + timedelta(days=7))

    component = reading()

    assert (component["status"], component["metric_value"]) == ("warning", 2)
    assert component["details"]["message"] == (
        "2 API tokens used in the last 30 days expire within 7 days or have expired: 'ci deploy' of alice "
        "(expires in 2d 3h), 'nightly import' of bob (expires in 7d 0h); their programs get 401 once they expire: "
        "give them new tokens (manage.py create_api_token), then revoke these"
    )
    assert [(t["name"], t["owner"]) for t in component["details"]["tokens"]] == [
        ("ci deploy", "alice"),
        ("nightly import", "bob"),
    ]


def test_a_token_that_expired_after_its_last_use_stays_a_warning(db):
    """Its program is getting 401s now: said until the token is revoked (renewed) or unused for 30 days."""
    ApiTokenFactory(name="ci", user=UserFactory(username="alice"), last_used_at=NOW - timedelta(days=2),
                    expires_at=NOW - timedelta(days=1, hours=5))  # fmt: skip

    component = reading()

    assert component["status"] == "warning"
    assert "'ci' of alice (expired 1d 5h ago)" in component["details"]["message"]


def test_a_token_expiring_at_the_reading_says_so_in_words(db):
    ApiTokenFactory(name="ci", user=UserFactory(username="alice"), last_used_at=NOW - timedelta(hours=1),
                    expires_at=NOW)  # fmt: skip

    assert "'ci' of alice (expired just now)" in reading()["details"]["message"]


def test_tokens_unused_revoked_or_without_expiry_are_left_out(db):
    soon = NOW + timedelta(days=1)
    ApiTokenFactory(name="never used", last_used_at=None, expires_at=soon)
    ApiTokenFactory(name="unused for a month", last_used_at=NOW - timedelta(days=30, seconds=1), expires_at=soon)
    ApiTokenFactory(name="revoked", last_used_at=USED, expires_at=soon, revoked_at=USED)
    ApiTokenFactory(name="never expires", last_used_at=USED, expires_at=None)

    assert reading()["status"] == "healthy"


def test_the_warning_names_the_first_five_and_counts_the_rest_never_the_secrets(db):
    tokens = [
        ApiTokenFactory(name=f"robot {n}", last_used_at=USED, expires_at=NOW + timedelta(days=1, hours=n))
        for n in range(7)
    ]

    component = reading()

    message = component["details"]["message"]
    assert component["metric_value"] == 7
    assert "'robot 4' of" in message and "'robot 5'" not in message and "and 2 more" in message
    assert len(component["details"]["tokens"]) == 5
    stored = str(component["details"])
    assert not any(token.token_hash in stored for token in tokens)


def test_the_check_is_one_query(db, django_assert_max_num_queries):
    ApiTokenFactory.create_batch(5, last_used_at=USED, expires_at=NOW + timedelta(days=1))

    # The tokens with their owners' names, and on Postgres the statement timeout, its savepoint and its release.
    with django_assert_max_num_queries(4):
        assert reading()["metric_value"] == 5


def test_the_check_reads_the_recently_used_tokens_from_their_index(db):
    """However many tokens expired or went unused over the years, the check reads the few in use."""
    owner = UserFactory()
    ApiTokenFactory.create_batch(
        2000, user=owner, last_used_at=NOW - timedelta(days=400), expires_at=NOW - timedelta(days=300)
    )
    ApiTokenFactory.create_batch(3, user=owner, last_used_at=USED, expires_at=NOW + timedelta(days=1))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE api_tokens")

    plan = api_tokens_expiring_in_use(NOW).values("name", "user__username").explain()  # as the check reads it

    assert "api_tokens_expiring_idx" in plan, plan


def test_the_warning_raises_an_alert_naming_the_tokens(machine, no_cluster):
    """What pages someone days ahead, rather than the integration's 401 at 3 a.m."""
    ApiTokenFactory(user=UserFactory(username="alice"), name="ci deploy", last_used_at=USED,
                    expires_at=NOW + timedelta(days=3))  # fmt: skip

    with time_machine.travel(NOW, tick=False):
        health_service.run_health_checks_sync()

    alert = AlertHistory.objects.get(title="Health check job_queue/api_tokens.expiring is warning")
    assert alert.severity == "warning"
    assert "'ci deploy' of alice (expires in 3d 0h)" in alert.message
