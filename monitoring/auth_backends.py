"""Django's permission check, in one query instead of two.

Every API request and dashboard poll checks a permission; Django's ModelBackend reads the
user's own permissions and those of their groups in two ORM queries. This backend reads
both in one statement (docs/benchmark.md). Everything else, logging in included, is
ModelBackend's.
"""

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection


def _permissions_sql() -> str:
    quote = connection.ops.quote_name
    return f"""
        SELECT ct.app_label, p.codename
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
    def get_all_permissions(self, user_obj, obj=None):
        if user_obj.is_superuser or not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):  # ModelBackend's per-request cache on the user
            with connection.cursor() as cursor:
                cursor.execute(_permissions_sql(), [user_obj.pk, user_obj.pk])
                user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in cursor.fetchall()}
        return user_obj._perm_cache
