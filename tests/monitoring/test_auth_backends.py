"""Permissions are read in one query (on Postgres, the same query as the session's or the API
token's user), and mean exactly what they mean with Django's ModelBackend."""

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User

from monitoring.auth_backends import PermissionBackend
from monitoring.permissions import CONTROL_JOBS, RESOLVE_ALERTS, VIEW_ALERTS, VIEW_JOBS, VIEW_METRICS
from monitoring.tokens import api_token_authenticate, api_token_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def permission(name: str) -> Permission:
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def group_with(*names: str) -> Group:
    group = Group.objects.create(name="+".join(names))
    group.permissions.add(*(permission(name) for name in names))
    return group


def fresh(user: User) -> User:
    """The user as the next request loads it: no permission cache."""
    return User.objects.get(pk=user.pk)


def test_own_and_group_permissions_in_one_query(django_assert_num_queries):
    user = UserFactory(permissions=[VIEW_JOBS])
    user.groups.add(group_with(VIEW_ALERTS, RESOLVE_ALERTS), group_with(VIEW_ALERTS, VIEW_METRICS))
    user = fresh(user)

    with django_assert_num_queries(1):
        assert user.has_perm(VIEW_JOBS)
        assert user.has_perm(RESOLVE_ALERTS)
        assert user.has_perm(VIEW_METRICS)
        assert not user.has_perm(CONTROL_JOBS)
        assert user.get_all_permissions() == {VIEW_JOBS, VIEW_ALERTS, RESOLVE_ALERTS, VIEW_METRICS}


def test_the_sessions_user_comes_with_their_permissions(is_postgres, django_assert_num_queries):
    user = UserFactory(permissions=[VIEW_JOBS])
    user.groups.add(group_with(VIEW_ALERTS))

    with django_assert_num_queries(1 if is_postgres else 2):  # SQLite: the user, then the permissions
        loaded = PermissionBackend().get_user(str(user.pk))  # as the session stores it
        assert loaded.has_perm(VIEW_JOBS) and loaded.has_perm(VIEW_ALERTS)
        assert not loaded.has_perm(CONTROL_JOBS)


SAME_AS_MODEL_BACKEND = pytest.mark.parametrize(
    "own, groups",
    [
        ([], []),
        ([VIEW_JOBS], []),
        ([], [[VIEW_JOBS, CONTROL_JOBS]]),
        ([VIEW_JOBS, VIEW_ALERTS], [[VIEW_JOBS], [RESOLVE_ALERTS, VIEW_ALERTS]]),
    ],
)


@SAME_AS_MODEL_BACKEND
def test_the_same_permissions_as_djangos_model_backend(own, groups):
    user = UserFactory(permissions=own)
    user.groups.add(*(group_with(*names) for names in groups))

    assert PermissionBackend().get_all_permissions(fresh(user)) == ModelBackend().get_all_permissions(fresh(user))


@SAME_AS_MODEL_BACKEND
def test_the_sessions_user_has_the_same_permissions_as_with_djangos_model_backend(own, groups):
    user = UserFactory(permissions=own)
    user.groups.add(*(group_with(*names) for names in groups))

    loaded = PermissionBackend().get_user(user.pk)

    assert loaded.get_all_permissions() == ModelBackend().get_all_permissions(fresh(user))


def test_an_api_tokens_user_comes_with_their_permissions(is_postgres, django_assert_num_queries):
    _, raw = api_token_create(user=UserFactory(permissions=[VIEW_JOBS]), name="ci")
    api_token_authenticate(raw)  # the first use writes last_used_at; the next ones within a minute do not

    with django_assert_num_queries(1 if is_postgres else 2):  # SQLite: the token and user, then the permissions
        user = api_token_authenticate(raw).user
        assert user.has_perm(VIEW_JOBS)
        assert not user.has_perm(CONTROL_JOBS)


@SAME_AS_MODEL_BACKEND
def test_an_api_tokens_user_has_the_same_permissions_as_with_djangos_model_backend(own, groups):
    user = UserFactory(permissions=own)
    user.groups.add(*(group_with(*names) for names in groups))
    _, raw = api_token_create(user=user, name="ci")

    assert api_token_authenticate(raw).user.get_all_permissions() == ModelBackend().get_all_permissions(fresh(user))


def test_no_user_for_an_inactive_unknown_or_malformed_id():
    inactive = UserFactory(permissions=[VIEW_JOBS], is_active=False)

    assert PermissionBackend().get_user(inactive.pk) is None
    assert PermissionBackend().get_user(inactive.pk + 1000) is None
    assert PermissionBackend().get_user("not a number") is None


def test_a_revoked_permission_is_gone_on_the_next_request():
    user = UserFactory(permissions=[VIEW_JOBS, CONTROL_JOBS])
    assert fresh(user).has_perm(CONTROL_JOBS)

    user.user_permissions.remove(permission(CONTROL_JOBS))

    assert not fresh(user).has_perm(CONTROL_JOBS)
    assert fresh(user).has_perm(VIEW_JOBS)


def test_an_inactive_user_has_no_permission():
    user = UserFactory(permissions=[VIEW_JOBS], is_active=False)

    assert not fresh(user).has_perm(VIEW_JOBS)
    assert PermissionBackend().get_all_permissions(fresh(user)) == set()


def test_a_superuser_has_every_permission():
    user = UserFactory(is_superuser=True, permissions=[VIEW_JOBS])

    assert fresh(user).has_perm(CONTROL_JOBS)
    assert PermissionBackend().get_all_permissions(fresh(user)) >= {VIEW_JOBS, CONTROL_JOBS, RESOLVE_ALERTS}
    assert PermissionBackend().get_user(user.pk).has_perm(CONTROL_JOBS)  # not only their own VIEW_JOBS
    _, raw = api_token_create(user=user, name="ci")
    assert api_token_authenticate(raw).user.has_perm(CONTROL_JOBS)


def test_logging_in_still_works(client):
    UserFactory(username="carol")

    assert client.login(username="carol", password="correct horse battery staple")
    assert not client.login(username="carol", password="wrong")
