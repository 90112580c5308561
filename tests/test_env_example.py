""".env.example, loaded as it is (`set -a; . ./.env; set +a`), gives the defaults it documents."""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOW = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DATABASES['default']['ENGINE'], s.WORKER_HOSTNAME, s.DEMO_AI_SERVICE_KEY or '-')"
)


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def settings_from_env_example(tmp_path, show: str = SHOW, **env) -> list[str]:
    example = env_example()
    environ = {name: value for name, value in os.environ.items() if name not in example}
    environ |= {**example, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "x" * 60}
    environ |= {"VAR_DIR": str(tmp_path), "STATIC_ROOT": str(tmp_path / "static"), **env}
    done = subprocess.run(
        [sys.executable, "-c", show], env=environ, cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_empty_values_mean_the_documented_defaults(tmp_path):
    # DATABASE_URL= is SQLite under VAR_DIR, WORKER_HOSTNAME= the host name (an empty DATABASE_URL
    # stopped every command with dj_database_url's UnknownSchemeError).
    assert settings_from_env_example(tmp_path) == ["django.db.backends.sqlite3", socket.gethostname(), "-"]


def test_the_simulated_service_key_defaults_to_the_api_key(tmp_path):
    assert settings_from_env_example(tmp_path, AI_MATCHING_API_KEY="demo-key")[2] == "demo-key"


READ = (
    "import os, json; names = []; getenv = os.getenv\n"
    "os.getenv = lambda name, *default: names.append(name) or getenv(name, *default)\n"
    "import config.settings; print(json.dumps(names))"
)


def test_it_lists_every_variable_the_settings_read(tmp_path):
    """A variable missing from .env.example is one an operator never learns exists."""
    environ = {**os.environ, "SECRET_KEY": "x" * 60, "VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", READ], env=environ, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    read = set(json.loads(done.stdout))

    assert len(read) > 80
    assert sorted(read - set(env_example())) == []


def test_its_examples_uncommented_load_in_the_shell_that_sources_the_file(tmp_path):
    """Drill: uncommented as they were, the JSON examples broke `. ./.env` ("crm,: not found"): the
    variables kept other values and the watchdog ran on settings the workers did not have."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    examples = [line.removeprefix("# ") for line in lines if re.match(r"# [A-Z_]+=", line)]
    (tmp_path / "env").write_text("\n".join(examples) + "\n")

    done = subprocess.run(
        ["sh", "-c", f"set -a; . {tmp_path / 'env'}; set +a; env -0"], capture_output=True, text=True, check=False
    )

    assert (done.returncode, done.stderr) == (0, "")
    loaded = dict(item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)
    json_examples = {line.split("=", 1)[0] for line in examples if line.split("=", 1)[1].startswith(("'[", "'{"))}
    assert json_examples == {"HEALTH_EXTERNAL_SERVICES", "HEALTH_EXPECTED_JOBS"}
    assert all(json.loads(loaded[name]) for name in json_examples)


POOLER = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DATABASE_POOLER, s.DATABASES['default']['OPTIONS']['prepare_threshold'])"
)


def test_supabase_transaction_pooler_port_turns_prepared_statements_off(tmp_path):
    """Copied as it is, .env.example sets DATABASE_POOLER= (empty): on port 6543 that must still
    mean the transaction pooler (docs/deployment.md), or the first prepared statement sent through
    it fails on another server connection ("prepared statement … does not exist")."""
    supabase = "postgres://postgres.ref:pw@aws-0-eu.pooler.supabase.com:6543/postgres?sslmode=require"
    assert settings_from_env_example(tmp_path, show=POOLER, DATABASE_URL=supabase) == ["transaction", "None"]


PATHS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.VAR_DIR, s.STATIC_ROOT, s.EMAIL_FILE_PATH, s.DATABASES['default']['NAME'])"
)


def test_the_paths_follow_var_dir(tmp_path):
    """VAR_DIR changed in a copy of .env.example moves everything under it; STATIC_ROOT= and
    EMAIL_FILE_PATH= as written there were the working directory and no folder at all."""
    var = tmp_path / "data"

    shown = settings_from_env_example(tmp_path, show=PATHS, VAR_DIR=str(var), STATIC_ROOT="")

    assert shown == [str(var), str(var / "static"), str(var / "mail"), str(var / "db.sqlite3")]


def test_an_empty_var_dir_is_the_projects_var_folder(tmp_path):
    shown = settings_from_env_example(tmp_path, show=PATHS, VAR_DIR="", STATIC_ROOT="")

    assert shown[:3] == [str(ROOT / "var"), str(ROOT / "var" / "static"), str(ROOT / "var" / "mail")]


BLANKED = (
    "SITE_URL",
    "LOG_LEVEL",
    "Q_LOG_LEVEL",
    "Q_CLUSTER_NAME",
    "EMAIL_BACKEND",
    "DEFAULT_FROM_EMAIL",
    "EMAIL_HOST",
    "HEALTH_DISK_PATH",
)
DEFAULTS_SHOWN = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.SITE_URL, s.LOGGING['root']['level'], s.LOGGING['loggers']['django-q']['level'], "
    "s.Q_CLUSTER['name'], s.EMAIL_BACKEND, s.DEFAULT_FROM_EMAIL, s.EMAIL_HOST, s.HEALTH['DISK_PATH'])"
)


def test_a_value_blanked_in_a_copy_means_its_default(tmp_path):
    """Emptying a filled-in line of .env.example (`SITE_URL=`) is the default, not an empty value:
    an empty SITE_URL made every link in an alert email relative, an empty EMAIL_BACKEND failed
    every notification on import."""
    shown = settings_from_env_example(tmp_path, show=DEFAULTS_SHOWN, **dict.fromkeys(BLANKED, ""))

    assert shown == [env_example()[name] for name in BLANKED]


LIVENESS = (
    "import django, json; django.setup(); from django.conf import settings as s; options = s.DATABASES['default']"
    "['OPTIONS']; print(json.dumps({k: v for k, v in options.items() if k.startswith(('keepalives', 'tcp_', 'conn'))},"
    " separators=(',', ':')))"
)


def test_a_postgres_connection_fails_within_db_dead_after_seconds_once_its_server_goes_silent(tmp_path):
    """Keepalives probing after half the time, three probes in the other half; an unacknowledged
    send given all of it (tests/reliability/test_server_goes_silent.py sees them work)."""
    shown = settings_from_env_example(tmp_path, show=LIVENESS, DATABASE_URL="postgres://u@db.example:5432/jobs")

    assert json.loads(shown[0]) == {
        "keepalives": 1,
        "keepalives_idle": 15,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 30000,
        "connect_timeout": 10,
    }


SESSION = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps(s.DB_SESSION_SETTINGS, separators=(',', ':')))"
)


def test_the_server_sees_a_silent_node_within_db_dead_after_seconds_too(tmp_path):
    """Each session sets the server's keepalives and tcp_user_timeout to its own: a node cut off in a
    transaction does not hold its rows for the kernel's 2 hours (tests/reliability/test_node_cut_off.py).
    A session's SET, not startup options, which some poolers refuse (monitoring.apps.configure_session)."""
    shown = settings_from_env_example(tmp_path, show=SESSION, DATABASE_URL="postgres://u@db.example:5432/jobs")

    assert json.loads(shown[0]) == {
        "jit": "off",
        "tcp_keepalives_idle": 15,
        "tcp_keepalives_interval": 5,
        "tcp_keepalives_count": 3,
        "tcp_user_timeout": 30000,
    }
    shown = settings_from_env_example(
        tmp_path, show=SESSION, DATABASE_URL="postgres://u@db.example:5432/jobs", DB_DEAD_AFTER_SECONDS="0"
    )
    assert json.loads(shown[0]) == {"jit": "off"}


def test_keepalives_given_in_database_url_win_on_both_sides(tmp_path):
    url = "postgres://u@db.example:5432/jobs?keepalives_idle=120&connect_timeout=3"
    options = json.loads(settings_from_env_example(tmp_path, show=LIVENESS, DATABASE_URL=url)[0])
    session = json.loads(settings_from_env_example(tmp_path, show=SESSION, DATABASE_URL=url)[0])

    assert (options["keepalives_idle"], options["connect_timeout"], options["keepalives_interval"]) == (120, 3, 5)
    assert session["tcp_keepalives_idle"] == 120


def settings_refused(tmp_path, **env) -> str:
    """What loading the settings with .env.example and `env` printed, once refused."""
    example = env_example()
    environ = {name: value for name, value in os.environ.items() if name not in example}
    environ |= {**example, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "x" * 60}
    environ |= {"VAR_DIR": str(tmp_path), **env}

    done = subprocess.run([sys.executable, "-c", SHOW], env=environ, cwd=ROOT, capture_output=True, text=True)

    assert done.returncode != 0
    return done.stderr


@pytest.mark.parametrize("seconds", ["1", "-1"])
def test_a_redis_timeout_below_the_brokers_wait_is_refused(tmp_path, seconds):
    """The broker waits 1 s for a task: with a timeout of 1 s every empty-queue wait failed; with
    -1 every Redis command ("Timeout value out of range"): the cache, the broker, the login throttle."""
    assert "REDIS_TIMEOUT_SECONDS must be 0 (no limit) or at least 2" in settings_refused(
        tmp_path, REDIS_TIMEOUT_SECONDS=seconds
    )


@pytest.mark.parametrize("seconds", ["-1", "3000000"])
def test_a_db_dead_after_seconds_the_kernel_would_refuse_is_refused(tmp_path, seconds):
    """3,000,000 failed every connection ("setsockopt(TCP_KEEPIDLE) failed: Invalid argument")."""
    stderr = settings_refused(tmp_path, DATABASE_URL="postgres://u@db.example:5432/jobs", DB_DEAD_AFTER_SECONDS=seconds)
    assert "DB_DEAD_AFTER_SECONDS must be 0 (the kernel's defaults) or 1 to 3600 seconds" in stderr


def test_db_dead_after_seconds_0_leaves_the_kernels_defaults(tmp_path):
    shown = settings_from_env_example(
        tmp_path, show=LIVENESS, DATABASE_URL="postgres://u@db.example:5432/jobs", DB_DEAD_AFTER_SECONDS="0"
    )

    assert json.loads(shown[0]) == {"connect_timeout": 10}
