"""Django's permission check, without queries of its own.

Every API request and dashboard poll loads the session's user and checks a permission;
Django's ModelBackend reads the user, then their own permissions, then those of their
groups: three queries. This backend reads the permissions in one statement, and on
Postgres in the same statement as the user (docs/benchmark.md). Everything else, logging
in included, is ModelBackend's.
"""

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models.expressions import RawSQL


def _permissions_sql() -> str:
    """The names ("app_label.codename") of the permissions of user %s, own or through a group (%s)."""
    quote = connection.ops.quote_name
    return f"""
        SELECT ct.app_label || '.' || p.codename
        FROM {quote(Permission._meta.db_table)} p
        JOIN {quote(ContentType._meta.db_table)} ct ON ct.id = p.content_type_id
        WHERE p.id IN (
            SELECT permission_id FROM {quote(User.user_permissions.through._meta.db_table)} WHERE user_id = %s
            UNION
            SELECT gp.permission_id FROM {quote(Group.permissions.through._meta.db_table)} gp
            JOIN {quote(User.groups.through._meta.db_table)} ug ON ug.group_id = gp.group_id
            WHERE ug.user_id = %s
        )
    """


class PermissionBackend(ModelBackend):
    def get_user(self, user_id):
        """The session's user; on Postgres with their permissions, read in the same statement."""
        try:
            pk = User._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        if connection.vendor != "postgresql":  # SQLite: the permissions come in a query of their own
            return super().get_user(pk)
        permission_names = RawSQL(f"ARRAY({_permissions_sql()})", [pk, pk])
        try:
            user = User._default_manager.annotate(permission_names=permission_names).get(pk=pk)
        except User.DoesNotExist:
            return None
        if not self.user_can_authenticate(user):
            return None
        if not user.is_superuser:  # a superuser's are every permission, which ModelBackend lists itself
            user._perm_cache = set(user.permission_names)
        return user

    def get_all_permissions(self, user_obj, obj=None):
        if user_obj.is_superuser or not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):  # ModelBackend's per-request cache on the user
            with connection.cursor() as cursor:
                cursor.execute(_permissions_sql(), [user_obj.pk, user_obj.pk])
                user_obj._perm_cache = {name for (name,) in cursor.fetchall()}
        return user_obj._perm_cache
