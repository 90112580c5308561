"""Django's permission check, without queries of its own.

Every API request and dashboard poll loads a user (the session's or an API token's) and
checks a permission; Django's ModelBackend reads the user, then their own permissions, then
those of their groups: three queries. This backend reads the permissions in one statement,
and on Postgres in the same statement as the user (`with_permission_names`, docs/benchmark.md).
Everything else, logging in included, is ModelBackend's.
"""

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models.expressions import RawSQL


def _permissions_sql(user_id: str) -> str:
    """The names ("app_label.codename") of the permissions of the user whose id is the SQL
    expression `user_id` (a placeholder or a column), own or through a group."""
    quote = connection.ops.quote_name
    return f"""
        SELECT ct.app_label || '.' || p.codename
        FROM {quote(Permission._meta.db_table)} p
        JOIN {quote(ContentType._meta.db_table)} ct ON ct.id = p.content_type_id
        WHERE p.id IN (
            SELECT permission_id FROM {quote(User.user_permissions.through._meta.db_table)}
            WHERE user_id = {user_id}
            UNION
            SELECT gp.permission_id FROM {quote(Group.permissions.through._meta.db_table)} gp
            JOIN {quote(User.groups.through._meta.db_table)} ug ON ug.group_id = gp.group_id
            WHERE ug.user_id = {user_id}
        )
    """


def with_permission_names(queryset, user_id_column: str):
    """`queryset` whose rows carry `permission_names`: those of the user whose id is in
    `user_id_column` of its table, read in the same statement. Postgres only (elsewhere the
    queryset as it is); pass each loaded user to `remember_permissions`."""
    if connection.vendor != "postgresql":
        return queryset
    quote = connection.ops.quote_name
    column = f"{quote(queryset.model._meta.db_table)}.{quote(user_id_column)}"
    return queryset.annotate(permission_names=RawSQL(f"ARRAY({_permissions_sql(column)})", []))


def remember_permissions(user: User, row) -> None:
    """Fill the request's permission cache of `user` from a row of `with_permission_names`, so
    checking a permission reads nothing. A superuser's are every permission, which ModelBackend
    lists itself; an inactive user has none."""
    names = getattr(row, "permission_names", None)
    if names is not None and user.is_active and not user.is_superuser:
        user._perm_cache = set(names)


class PermissionBackend(ModelBackend):
    def get_user(self, user_id):
        """The session's user; on Postgres with their permissions, read in the same statement."""
        try:
            pk = User._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        user = with_permission_names(User._default_manager.filter(pk=pk), User._meta.pk.column).first()
        if user is None or not self.user_can_authenticate(user):
            return None
        remember_permissions(user, user)
        return user

    def get_all_permissions(self, user_obj, obj=None):
        if user_obj.is_superuser or not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):  # ModelBackend's per-request cache on the user
            with connection.cursor() as cursor:
                cursor.execute(_permissions_sql("%s"), [user_obj.pk, user_obj.pk])
                user_obj._perm_cache = {name for (name,) in cursor.fetchall()}
        return user_obj._perm_cache
