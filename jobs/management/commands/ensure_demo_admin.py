import secrets

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo's superuser 'admin' once (password kept in var/) and print the login."

    def handle(self, **options):
        password_file = settings.VAR_DIR / "admin-password.txt"
        if not User.objects.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "admin@localhost", password)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        password = password_file.read_text().strip() if password_file.exists() else "(set before; see createsuperuser)"
        self.stdout.write(self.style.SUCCESS(f"Log in as admin / {password}"))
