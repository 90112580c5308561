"""Security settings a deployment sets from the environment (docs/deployment.md, .env.example)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOW = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_SSL_REDIRECT)"
)


def settings_with(**env) -> list[str]:
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "x" * 60, **env}
    for name in ("SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT"):
        if name not in env:
            environ.pop(name, None)
    done = subprocess.run([sys.executable, "-c", SHOW], env=environ, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_hsts_and_the_https_redirect_are_off_by_default():
    assert settings_with() == ["0", "False", "False"]


def test_hsts_and_the_https_redirect_can_be_set_from_the_environment():
    env = {"SECURE_HSTS_SECONDS": "31536000", "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true", "SECURE_SSL_REDIRECT": "true"}
    assert settings_with(**env) == ["31536000", "True", "True"]


def test_they_are_documented():
    for document in (ROOT / ".env.example", ROOT / "docs/deployment.md"):
        text = document.read_text()
        assert all(name in text for name in ("SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT"))
