"""Logging in counts failed passwords: past the limit, even the right password is refused for a
while (a drill sent 30 wrong ones, then the right one, and was let in)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from monitoring.checks import login_settings
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
RIGHT = "correct horse battery staple"
REFUSED = "Too many failed logins from here: try again in 15 minutes at the latest."
LOGIN_PAGES = [reverse("login"), reverse("admin:login")]


def log_in(client, url, password, username="alice", address="10.0.0.1", **headers):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def logged_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", is_staff=True)


@pytest.mark.parametrize("url", LOGIN_PAGES)
@time_machine.travel(NOW, tick=False)
def test_after_5_failed_passwords_even_the_right_one_is_refused_for_15_minutes(client, alice, url):
    for _ in range(5):
        assert not logged_in(log_in(client, url, "wrong"))

    refused = log_in(client, url, RIGHT)

    assert refused.status_code == 200 and not logged_in(refused)
    assert REFUSED in refused.content.decode()
    with time_machine.travel(NOW + timedelta(minutes=15, seconds=1), tick=False):
        assert logged_in(log_in(client, url, RIGHT))


def test_the_count_is_per_address_and_username_and_a_success_clears_it(client, alice):
    UserFactory(username="bob")
    url = reverse("login")
    for _ in range(4):
        log_in(client, url, "wrong")
    assert logged_in(log_in(client, url, RIGHT))  # the 5th try: the count starts again
    client.logout()

    for _ in range(5):
        log_in(client, url, "wrong")

    assert REFUSED in log_in(client, url, RIGHT).content.decode()
    assert logged_in(log_in(client, url, RIGHT, address="10.0.0.2"))  # another address
    client.logout()
    assert logged_in(log_in(client, url, RIGHT, username="bob"))  # another user from the same one


def test_a_form_without_its_password_does_not_clear_the_count(client, alice):
    url = reverse("login")
    for _ in range(5):
        log_in(client, url, "wrong")

    client.post(url, {"username": "alice"}, REMOTE_ADDR="10.0.0.1")

    assert REFUSED in log_in(client, url, RIGHT).content.decode()


def test_one_address_trying_many_usernames_is_refused_too(client, alice, settings):
    settings.LOGIN_THROTTLE = {**settings.LOGIN_THROTTLE, "PER_ADDRESS": 3}
    url = reverse("login")
    for name in ("admin", "root", "ops"):
        log_in(client, url, "wrong", username=name)

    assert REFUSED in log_in(client, url, RIGHT).content.decode()


def test_a_cache_that_fails_counts_nothing_and_keeps_nobody_out(client, alice, monkeypatch, caplog):
    # The cache is Redis where REDIS_URL is set: down at 3 a.m., it must not keep operators out.
    def down(*args, **kwargs):
        raise ConnectionError("redis down")

    for operation in ("get_many", "add", "incr", "delete"):
        monkeypatch.setattr(f"django.core.cache.cache.{operation}", down)
    url = reverse("login")
    for _ in range(6):
        log_in(client, url, "wrong")

    assert logged_in(log_in(client, url, RIGHT))
    assert "failed logins cannot be counted: the cache failed" in caplog.text


# --- behind proxies: whose address is counted --------------------------------------------


def fail_five_times_behind_a_proxy(client, forwarded_for):
    for _ in range(5):
        log_in(client, reverse("login"), "wrong", address="10.9.9.9", HTTP_X_FORWARDED_FOR=forwarded_for)


def test_behind_a_trusted_proxy_each_client_is_counted_by_its_own_address(client, alice, settings):
    settings.TRUSTED_PROXIES = 1
    fail_five_times_behind_a_proxy(client, "203.0.113.7")
    url = reverse("login")

    refused = log_in(client, url, RIGHT, address="10.9.9.9", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert REFUSED in refused.content.decode()
    # Another client through the same proxy (same REMOTE_ADDR) is not locked out with it.
    assert logged_in(log_in(client, url, RIGHT, address="10.9.9.9", HTTP_X_FORWARDED_FOR="198.51.100.4"))


def test_addresses_a_client_wrote_into_x_forwarded_for_do_not_escape_the_count(client, alice, settings):
    # The proxy appends the address it received from: what came before is the client's own text.
    settings.TRUSTED_PROXIES = 1
    for forged in ("1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4", "5.5.5.5"):
        log_in(client, reverse("login"), "wrong", address="10.9.9.9", HTTP_X_FORWARDED_FOR=f"{forged}, 203.0.113.7")

    refused = log_in(client, reverse("login"), RIGHT, address="10.9.9.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")

    assert REFUSED in refused.content.decode()


def test_without_trusted_proxies_x_forwarded_for_is_ignored(client, alice, settings):
    settings.TRUSTED_PROXIES = 0
    fail_five_times_behind_a_proxy(client, "203.0.113.7")

    refused = log_in(client, reverse("login"), RIGHT, address="10.9.9.9", HTTP_X_FORWARDED_FOR="198.51.100.4")

    assert REFUSED in refused.content.decode()  # the header is the client's to write: REMOTE_ADDR counts


@pytest.mark.parametrize(
    "limit, variable, effect",
    [
        ("FAILURES", "LOGIN_FAILURES_ALLOWED", "every login would be refused, the right password included"),
        ("PER_ADDRESS", "LOGIN_FAILURES_PER_ADDRESS", "every login would be refused, the right password included"),
        ("MINUTES", "LOGIN_LOCKOUT_MINUTES", "no failure would be counted, and passwords guessed without end"),
    ],
)
def test_a_limit_of_0_is_refused_by_manage_py_check(settings, limit, variable, effect):
    """0 turns other settings off; here it would lock everyone out, or let anyone guess forever."""
    settings.LOGIN_THROTTLE = {**settings.LOGIN_THROTTLE, limit: 0}

    [found] = login_settings(None)

    assert found.id == "monitoring.E005"
    assert found.msg == f"{variable} must be at least 1, not 0: {effect}"


def test_with_0_failures_allowed_even_the_first_right_password_is_refused(client, alice, settings):
    """What the check above keeps from happening."""
    settings.LOGIN_THROTTLE = {**settings.LOGIN_THROTTLE, "FAILURES": 0}

    assert REFUSED in log_in(client, reverse("login"), RIGHT).content.decode()
