from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from monitoring.tokens import api_token_create


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME and print it (once: only its hash is kept). "
        "The token acts with that user's permissions; revoke it in admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what will use it (default: 'token for USERNAME')")
        parser.add_argument("--description", default="")

    def handle(self, username, name, description, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive; its tokens would not work")
        token, raw = api_token_create(user=user, name=name or f"token for {username}", description=description)
        self.stderr.write(f"Created API token {token.name!r} ({token.prefix}…) for {username}. It is shown only now:")
        self.stdout.write(raw)
