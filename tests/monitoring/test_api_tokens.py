"""API tokens: created by a command (shown once), stored hashed, listed and revoked in admin."""

import hashlib

import pytest
from django.core.management import CommandError, call_command

from monitoring.models import ApiToken
from monitoring.tokens import api_token_authenticate, api_token_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


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

    assert "Revoked 1 token(s)." in response.content.decode()
    revoke.refresh_from_db()
    keep.refresh_from_db()
    assert revoke.revoked_at is not None and keep.revoked_at is None
    assert api_token_authenticate(raw) is None


@pytest.mark.parametrize("lookup", ["token_hash", "token_hash__startswith", "token_hash__regex"])
def test_admin_refuses_filtering_on_the_hash(client, alice, lookup):
    """Admin filters on any field by URL: on the hash, that would spell it out a character at a time."""
    token, _ = api_token_create(user=alice, name="ci")
    client.force_login(UserFactory(username="tokview", is_staff=True, permissions=["monitoring.view_apitoken"]))
    response = client.get(f"/admin/monitoring/apitoken/?{lookup}={token.token_hash[:4]}")
    assert response.status_code == 400
    assert client.get("/admin/monitoring/apitoken/?name=ci").status_code == 200
