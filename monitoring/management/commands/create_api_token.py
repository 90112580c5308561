from datetime import UTC, timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from monitoring.tokens import DEFAULT_LIFETIME, api_token_create


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME and print it (once: only its hash is kept). "
        f"The token acts with that user's permissions and expires after {DEFAULT_LIFETIME.days} days "
        "unless --expires-in or --no-expiry says otherwise; revoke it in admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what will use it (default: 'token for USERNAME')")
        parser.add_argument("--description", default="")
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument(
            "--expires-in",
            metavar="DAYS",
            help=f"days until it stops working (default: {DEFAULT_LIFETIME.days})",
        )
        expiry.add_argument("--no-expiry", action="store_true", help="it never expires (until revoked)")

    def handle(self, username, name, description, expires_in, no_expiry, **options):
        lifetime = None if no_expiry else _lifetime(expires_in)
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive; its tokens would not work")
        token, raw = api_token_create(
            user=user, name=name or f"token for {username}", description=description, lifetime=lifetime
        )
        expiry = (
            f"expires at {token.expires_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
            if token.expires_at
            else "never expires"
        )
        self.stderr.write(
            f"Created API token {token.name!r} ({token.prefix}…) for {username}; it {expiry}. It is shown only now:"
        )
        self.stdout.write(raw)


# Past this a date no longer fits (year 9999); a token this long-lived is --no-expiry anyway.
MAX_DAYS = 36500


def _lifetime(days: str | None) -> timedelta:
    if days is None:
        return DEFAULT_LIFETIME
    try:
        value = int(days)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_DAYS:
        raise CommandError(
            f"--expires-in must be a whole number of days from 1 to {MAX_DAYS}, not {days!r} "
            "(--no-expiry for a token that never expires)"
        )
    return timedelta(days=value)
