"""API tokens: created by a command (shown once), stored hashed, listed and revoked in admin."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command

from monitoring.models import ApiToken, TokenStatus
from monitoring.tokens import (
    ApiTokenExpired,
    api_token_authenticate,
    api_token_create,
    api_tokens_revoke,
    token_status_q,
)
from tests.factories import ApiTokenFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def test_the_command_prints_the_token_once_and_keeps_only_its_hash(alice, capsys):
    call_command("create_api_token", "alice", "--name", "platform backend", "--description", "submits matching jobs")

    out, err = capsys.readouterr()
    raw = out.strip()
    token = ApiToken.objects.get()
    assert raw.startswith("jm_") and len(raw) > 40
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {token.name, token.description, token.prefix, token.token_hash}
    assert raw.startswith(token.prefix)
    assert (token.user, token.name, token.description) == (alice, "platform backend", "submits matching jobs")
    assert "shown only now" in err
    assert api_token_authenticate(raw) == token


def test_the_command_names_the_token_after_the_user_by_default(alice, capsys):
    call_command("create_api_token", "alice")

    assert ApiToken.objects.get().name == "token for alice"


@time_machine.travel(NOW, tick=False)
def test_a_new_token_expires_after_90_days_and_the_command_says_when(alice, capsys):
    call_command("create_api_token", "alice", "--name", "ci")

    out, err = capsys.readouterr()
    assert ApiToken.objects.get().expires_at == NOW + timedelta(days=90)
    assert "expires at 2027-02-27 03:00:00 UTC" in err
    assert out.strip().startswith("jm_") and "\n" not in out.strip()  # stdout is the token alone, for $(…)


@time_machine.travel(NOW, tick=False)
def test_the_command_takes_the_days_until_expiry(alice, capsys):
    call_command("create_api_token", "alice", "--expires-in", "7")

    assert ApiToken.objects.get().expires_at == NOW + timedelta(days=7)
    assert "expires at 2026-12-06 03:00:00 UTC" in capsys.readouterr().err


def test_the_command_makes_a_token_that_never_expires_only_when_told(alice, capsys):
    call_command("create_api_token", "alice", "--no-expiry")

    assert ApiToken.objects.get().expires_at is None
    assert "never expires" in capsys.readouterr().err


@pytest.mark.parametrize("days", ["0", "-3", "1.5", "ninety", "", "36501"])
def test_the_command_refuses_a_wrong_number_of_days_naming_the_option(alice, days):
    with pytest.raises(
        CommandError, match=f"--expires-in must be a whole number of days from 1 to 36500, not '{days}'"
    ):
        call_command("create_api_token", "alice", "--expires-in", days)
    assert not ApiToken.objects.exists()


def test_the_command_refuses_an_expiry_and_none_at_once(alice):
    with pytest.raises(CommandError, match="not allowed with argument"):
        call_command("create_api_token", "alice", "--expires-in", "7", "--no-expiry")
    assert not ApiToken.objects.exists()


def test_the_command_refuses_unknown_or_inactive_users(db):
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("create_api_token", "ghost")
    UserFactory(username="gone", is_active=False)
    with pytest.raises(CommandError, match="user 'gone' is inactive"):
        call_command("create_api_token", "gone")
    assert not ApiToken.objects.exists()


def test_every_token_is_different(alice):
    raws = {api_token_create(user=alice, name=f"t{n}")[1] for n in range(20)}

    assert len(raws) == 20


# --- admin ------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_admin_lists_tokens_without_their_hash(admin_client, alice):
    token, raw = api_token_create(user=alice, name="platform backend")

    for url in ("/admin/monitoring/apitoken/", f"/admin/monitoring/apitoken/{token.id}/change/"):
        page = admin_client.get(url).content.decode()
        assert "platform backend" in page and token.prefix in page
        assert token.token_hash not in page and raw not in page


def test_admin_cannot_create_tokens_the_command_does(admin_client):
    assert admin_client.get("/admin/monitoring/apitoken/add/").status_code == 403


def test_admin_revokes_selected_tokens(admin_client, alice):
    keep, _ = api_token_create(user=alice, name="keep")
    revoke, raw = api_token_create(user=alice, name="revoke")

    response = admin_client.post(
        "/admin/monitoring/apitoken/", {"action": "revoke", "_selected_action": [revoke.id]}, follow=True
    )

    assert "Revoked 1 token." in response.content.decode()
    revoke.refresh_from_db()
    keep.refresh_from_db()
    assert revoke.revoked_at is not None and keep.revoked_at is None
    assert api_token_authenticate(raw) is None


@pytest.fixture
def tokens_of_each_status(alice):
    """One token per status, as seen at NOW (expires soon: within 7 days)."""
    return {
        TokenStatus.ACTIVE: ApiTokenFactory(user=alice, name="active", expires_at=NOW + timedelta(days=8)),
        "never": ApiTokenFactory(user=alice, name="never", expires_at=None),
        TokenStatus.EXPIRES_SOON: ApiTokenFactory(user=alice, name="soon", expires_at=NOW + timedelta(days=7)),
        TokenStatus.EXPIRED: ApiTokenFactory(user=alice, name="expired", expires_at=NOW),
        TokenStatus.REVOKED: ApiTokenFactory(
            user=alice, name="revoked", expires_at=NOW + timedelta(days=30), revoked_at=NOW - timedelta(days=1)
        ),
    }


def test_a_tokens_status_and_its_filter_agree(tokens_of_each_status):
    statuses = {token.name: ApiToken.objects.get(id=token.id).status(NOW) for token in tokens_of_each_status.values()}

    assert statuses == {"active": "active", "never": "active", "soon": "expires_soon", "expired": "expired",
                        "revoked": "revoked"}  # fmt: skip
    for status in TokenStatus.values:
        names = {token.name for token in ApiToken.objects.filter(token_status_q(status, NOW))}
        assert names == {name for name, s in statuses.items() if s == status}, status


@time_machine.travel(NOW, tick=False)
def test_admin_lists_each_tokens_status_and_expiry(admin_client, tokens_of_each_status, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        page = admin_client.get("/admin/monitoring/apitoken/").content.decode()

    assert page.count('class="field-status">expires soon<') == 1
    assert page.count('class="field-status">expired<') == 1
    assert page.count('class="field-status">revoked<') == 1
    assert page.count('class="field-status">active<') == 2
    assert 'class="field-expires">never<' in page


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("status", TokenStatus.values)
def test_admin_filters_tokens_by_status(admin_client, tokens_of_each_status, status):
    page = admin_client.get(f"/admin/monitoring/apitoken/?status={status}").content.decode()

    shown = {name for name in ("active", "never", "soon", "expired", "revoked") if f">{name}</a></th>" in page}
    expected = {t.name for t in tokens_of_each_status.values() if t.status(NOW) == status}
    assert shown == expected


def test_admin_refuses_an_unknown_status_filter(admin_client, tokens_of_each_status):
    response = admin_client.get("/admin/monitoring/apitoken/?status=forever")

    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def change(admin_client, token, **fields):
    """POST the token's change form with its name and description, and `fields`."""
    data = {"name": token.name, "description": token.description, **fields}
    return admin_client.post(f"/admin/monitoring/apitoken/{token.id}/change/", data)


def expiry(moment):
    """The admin's split date-time fields for `moment` (admin shows UTC: TIME_ZONE)."""
    return {"expires_at_0": f"{moment:%Y-%m-%d}", "expires_at_1": f"{moment:%H:%M:%S}"}


@time_machine.travel(NOW, tick=False)
def test_admin_shows_the_status_on_the_change_page(admin_client, alice):
    token = ApiTokenFactory(user=alice, name="ci", expires_at=NOW + timedelta(days=2))

    page = admin_client.get(f"/admin/monitoring/apitoken/{token.id}/change/").content.decode()

    assert "expires soon" in page
    assert 'name="expires_at_0"' in page  # still running: its expiry can be brought forward


@time_machine.travel(NOW, tick=False)
def test_admin_brings_an_expiry_forward(admin_client, alice):
    token = ApiTokenFactory(user=alice, name="ci", expires_at=NOW + timedelta(days=30))

    response = change(admin_client, token, **expiry(NOW + timedelta(days=1)))

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.expires_at == NOW + timedelta(days=1)


@time_machine.travel(NOW, tick=False)
def test_admin_ends_a_token_now_and_a_past_moment_is_taken_as_now(admin_client, alice):
    """The admin's "Now" is already past when the form arrives; an earlier moment would rewrite
    when the token stopped working: both are saved as the moment of the change."""
    token, raw = api_token_create(user=alice, name="leaked")

    change(admin_client, token, **expiry(NOW - timedelta(days=3)))

    token.refresh_from_db()
    assert token.expires_at == NOW
    with pytest.raises(ApiTokenExpired):
        api_token_authenticate(raw)


@time_machine.travel(NOW, tick=False)
def test_admin_cannot_extend_an_expiry_or_remove_it(admin_client, alice):
    token = ApiTokenFactory(user=alice, name="ci", expires_at=NOW + timedelta(days=30))

    later = change(admin_client, token, **expiry(NOW + timedelta(days=31)))
    removed = change(admin_client, token, expires_at_0="", expires_at_1="")

    assert "An expiry can be brought forward, not extended past" in later.content.decode()
    assert "An expiry cannot be removed: create a new token" in removed.content.decode()
    token.refresh_from_db()
    assert token.expires_at == NOW + timedelta(days=30)


@time_machine.travel(NOW, tick=False)
def test_admin_can_give_a_token_without_expiry_one(admin_client, alice):
    token = ApiTokenFactory(user=alice, name="old", expires_at=None)

    change(admin_client, token, **expiry(NOW + timedelta(days=14)))

    token.refresh_from_db()
    assert token.expires_at == NOW + timedelta(days=14)


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("status", [TokenStatus.EXPIRED, TokenStatus.REVOKED])
def test_admin_leaves_the_expiry_of_a_finished_token_as_it_was(admin_client, tokens_of_each_status, status):
    """Once expired or revoked, the expiry is what happened: not to be edited into "never expired"."""
    token = tokens_of_each_status[status]
    page = admin_client.get(f"/admin/monitoring/apitoken/{token.id}/change/").content.decode()
    assert 'name="expires_at_0"' not in page

    change(admin_client, token, name="renamed", **expiry(NOW + timedelta(days=1)))

    before = token.expires_at
    token.refresh_from_db()
    assert (token.name, token.expires_at) == ("renamed", before)


@time_machine.travel(NOW, tick=False)
def test_admin_saving_a_token_keeps_a_revocation_made_meanwhile(admin_client, alice, monkeypatch):
    """The change form writes only what it changed: another admin's revocation (or a request's
    last_used_at) written after the form's row was read stays."""
    from monitoring.admin import ApiTokenAdmin

    token = ApiTokenFactory(user=alice, name="ci")
    read = ApiTokenAdmin.get_object

    def revoked_meanwhile(self, request, object_id, from_field=None):
        obj = read(self, request, object_id, from_field)
        api_tokens_revoke(tokens=ApiToken.objects.filter(id=token.id))
        return obj

    monkeypatch.setattr(ApiTokenAdmin, "get_object", revoked_meanwhile)
    change(admin_client, token, description="runs the nightly import", **expiry(token.expires_at))

    token.refresh_from_db()
    assert token.description == "runs the nightly import"
    assert token.revoked_at == NOW


@pytest.mark.parametrize("lookup", ["token_hash", "token_hash__startswith", "token_hash__regex"])
def test_admin_refuses_filtering_on_the_hash(client, alice, lookup):
    """Admin filters on any field by URL: on the hash, that would spell it out a character at a time."""
    token, _ = api_token_create(user=alice, name="ci")
    client.force_login(UserFactory(username="tokview", is_staff=True, permissions=["monitoring.view_apitoken"]))
    response = client.get(f"/admin/monitoring/apitoken/?{lookup}={token.token_hash[:4]}")
    assert response.status_code == 400
    assert client.get("/admin/monitoring/apitoken/?name=ci").status_code == 200
