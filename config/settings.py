"""Settings, all read from the environment (see .env.example for every variable).

Defaults are safe for production (DEBUG off, no default secret outside DEBUG) and
convenient for a newcomer: with no DATABASE_URL the project runs on an embedded SQLite
database under var/.
"""

import json
import os
import socket
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    value = os.getenv(name, default)
    if value.lower() not in ("true", "false", "1", "0"):
        raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")
    return value.lower() in ("true", "1")


def envint(name: str, default: int) -> int:
    value = os.getenv(name)
    try:
        return default if value in (None, "") else int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}")


def envfloat(name: str, default: float) -> float:
    value = os.getenv(name)
    try:
        return default if value in (None, "") else float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}")


def envjson(name: str, default):
    value = os.getenv(name)
    if value in (None, ""):
        return default
    try:
        return json.loads(value)
    except ValueError as e:
        raise ImproperlyConfigured(f"{name} must be JSON: {e}")


def envstr(name: str, default: str) -> str:
    """The variable, or `default` when it is unset or empty (`NAME=` as .env.example writes it)."""
    return os.getenv(name) or default


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


# Empty as unset, here and for STATIC_ROOT and EMAIL_FILE_PATH: Path("") would be the working directory.
VAR_DIR = Path(envstr("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = envbool("DEBUG", "false")

SECRET_KEY = os.getenv("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG"

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
# Django's page, except to the dashboard's htmx actions: a short reason its script can show.
CSRF_FAILURE_VIEW = "monitoring.views.base.csrf_failure"
# Base URL used in notifications to link back to the dashboard.
SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if envbool("BEHIND_HTTPS_PROXY", "false") else None
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", "false")
SESSION_COOKIE_HTTPONLY = True
# HTTPS only, once the site is served over TLS alone (docs/deployment.md): off by default, since
# a browser that saw HSTS keeps refusing plain HTTP for that long.
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "false")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "false")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles: runserver (the demo) leaves static files to WhiteNoise, as in production,
    # instead of staticfiles' own handler, which answered a 500 to /static/..%2f… (a traceback:
    # its path check raised past the handler's 404).
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_q",
    "ninja",  # serves the API docs' JavaScript and CSS itself, never from a CDN
    "monitoring",
    "jobs",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "monitoring.middleware.content_security_policy",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A database outage is a 503 (Retry-After) on every page, like the API's.
    "monitoring.middleware.DatabaseUnavailableMiddleware",
    "monitoring.middleware.ApiMiddleware",
    # A filter value the database cannot take (a NUL, a malformed array) in an admin list: 400, not 500.
    "monitoring.middleware.AdminFilterValueMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
# SQLite under var/ by default; any Postgres URL otherwise (Supabase: docs/deployment.md).
DATABASE_URL = envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 60), conn_health_checks=True)
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["OPTIONS"] = {
        # Web, cluster processes and worker threads share one file: wait for the lock
        # instead of failing, and take the write lock at BEGIN so upgrades never deadlock.
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Forked worker processes must see the test database, so it cannot live in memory.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
elif _db["ENGINE"] == "django.db.backends.postgresql":
    _db.setdefault("OPTIONS", {})
    # What each new session sets (monitoring.apps.configure_session). JIT compiling pays off for
    # queries running seconds; the heaviest here runs a few hundred ms, and compiling it added
    # ~65 ms each time (docs/benchmark.md, finding 5).
    DB_SESSION_SETTINGS = {"jit": "off"}
    # Supabase's transaction-mode pooler (port 6543, PgBouncer/Supavisor) hands each
    # transaction to any server connection: prepared statements and server-side cursors
    # do not survive that, so both are turned off for it.
    # Empty as unset (`DATABASE_POOLER=` as .env.example writes it): port 6543 still means transaction.
    DATABASE_POOLER = envstr("DATABASE_POOLER", "transaction" if _db.get("PORT") in (6543, "6543") else "")
    if DATABASE_POOLER not in ("", "session", "transaction"):
        raise ImproperlyConfigured("DATABASE_POOLER must be empty, session or transaction")
    if DATABASE_POOLER == "transaction":
        _db["OPTIONS"]["prepare_threshold"] = None
        _db["DISABLE_SERVER_SIDE_CURSORS"] = True
    else:
        # Django turns psycopg's prepared statements off by default, and psycopg then ignores
        # execute(prepare=True) as well: the progress write (monitoring/controller.py) was parsed
        # and planned on every call. Django's own cursors bind client-side and never prepare.
        _db["OPTIONS"].setdefault("prepare_threshold", 5)
    # A database that vanishes without closing its connections (a failover, a cut network) left a
    # query waiting about 15 minutes for the kernel to give up (net.ipv4.tcp_retries2), and the
    # thread holding it stuck that long: a pusher's dispatch, a worker's heartbeats, a page. With
    # libpq's keepalives a silent server is noticed while a query waits for its answer, and with
    # tcp_user_timeout a query sent and never acknowledged; the query then fails as in any outage
    # (docs/reliability.md). 0 leaves the kernel's defaults.
    DB_DEAD_AFTER_SECONDS = envint("DB_DEAD_AFTER_SECONDS", 30)
    if not 0 <= DB_DEAD_AFTER_SECONDS <= 3600:  # the kernel refuses keepalive times past 32767 s
        raise ImproperlyConfigured("DB_DEAD_AFTER_SECONDS must be 0 (the kernel's defaults) or 1 to 3600 seconds")
    if DB_DEAD_AFTER_SECONDS > 0:
        _idle = max(1, DB_DEAD_AFTER_SECONDS // 2)
        # Those given in DATABASE_URL (?keepalives_idle=…) win.
        for _name, _value in {
            "keepalives": 1,
            "keepalives_idle": _idle,  # then 3 unanswered probes: dead after about DB_DEAD_AFTER_SECONDS
            "keepalives_interval": max(1, (DB_DEAD_AFTER_SECONDS - _idle) // 3),
            "keepalives_count": 3,
            "tcp_user_timeout": DB_DEAD_AFTER_SECONDS * 1000,
        }.items():
            _db["OPTIONS"].setdefault(_name, _value)
        # The server's side of the same, set by each session (monitoring.apps.configure_session): a
        # node cut off in the middle of a transaction (an outcome, a claim) left its backend idle in
        # it, holding the job's row, until the server's own keepalives (the kernel's: 2 hours and
        # more) saw it gone; a sweep taking the job back waited on that row all the while.
        DB_SESSION_SETTINGS |= {
            "tcp_keepalives_idle": _db["OPTIONS"]["keepalives_idle"],
            "tcp_keepalives_interval": _db["OPTIONS"]["keepalives_interval"],
            "tcp_keepalives_count": _db["OPTIONS"]["keepalives_count"],
            "tcp_user_timeout": _db["OPTIONS"]["tcp_user_timeout"],
        }
    # libpq waits for ever for a server that does not answer the connection (the kernel gives up
    # after about 2 minutes).
    _db["OPTIONS"].setdefault("connect_timeout", envint("DB_CONNECT_TIMEOUT", 10))
DATABASE_POOLER = globals().get("DATABASE_POOLER", "")
DB_SESSION_SETTINGS = globals().get("DB_SESSION_SETTINGS", {})
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache: shared by every process (django-q2 keeps its cluster status here) ----------
REDIS_URL = os.getenv("REDIS_URL", "")
# A Redis gone silent (a failover, a cut network) must not hold what waits on it, a submit's
# enqueue, a login's throttle, a pusher, until the kernel gives up (about 15 minutes): a command
# fails after this many seconds, as when Redis is down. redis-py 8 waits 5 s by default, older
# releases (which pyproject.toml admits) for ever, so it is said here. More than the broker's
# blocking dequeue (1 s).
REDIS_TIMEOUT_SECONDS = envint("REDIS_TIMEOUT_SECONDS", 5)
if REDIS_TIMEOUT_SECONDS < 0 or 0 < REDIS_TIMEOUT_SECONDS < 2:  # below 2: every empty-queue wait would time out
    raise ImproperlyConfigured(
        "REDIS_TIMEOUT_SECONDS must be 0 (no limit) or at least 2: the broker waits 1 s for a task"
    )
REDIS_OPTIONS = {
    "socket_connect_timeout": REDIS_TIMEOUT_SECONDS or None,
    "socket_timeout": REDIS_TIMEOUT_SECONDS or None,
    "socket_keepalive": True,
}
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": REDIS_OPTIONS,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}}

# --- django-q2 ----------------------------------------------------------------------------
# One cluster per node (`manage.py qcluster`). The broker is the ORM (the database) unless
# REDIS_URL is set. Our broker subclasses also dispatch due retries and recover jobs of
# dead workers from the pusher loop, so every qcluster node does that without an extra
# process (see jobs/brokers.py).
Q_CLUSTER = {
    "name": envstr("Q_CLUSTER_NAME", "jobmonitor"),
    "workers": envint("Q_WORKERS", 2),
    # Seconds before django-q2 kills a worker stuck in a task: a backstop behind each
    # job type's own timeout (jobs.registry), which is passed per task.
    "timeout": envint("Q_TIMEOUT", 3600),
    # Redelivery of tasks whose worker died before acknowledging; must exceed timeout.
    # Harmless for jobs: a second delivery of the same attempt is refused by its claim.
    "retry": envint("Q_RETRY", 3660),
    "max_attempts": 3,
    "ack_failures": True,
    # Job outcomes live in our own tables; keep only failed django-q2 tasks.
    "save_limit": -1,
    "recycle": envint("Q_RECYCLE", 500),
    "max_rss": envint("Q_MAX_RSS_KB", 512 * 1024),
    "poll": 0.2,
    "catch_up": False,
    "broker_class": "jobs.brokers.RedisBroker" if REDIS_URL else "jobs.brokers.ORMBroker",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Jobs ---------------------------------------------------------------------------------
JOBS = {
    # RetryManager: delay = min(base * 2**attempt, max) + 10-30 % jitter.
    "RETRY": {
        "max_attempts": envint("JOBS_RETRY_MAX_ATTEMPTS", 3),
        "base_delay": envfloat("JOBS_RETRY_BASE_DELAY", 1.0),
        "max_delay": envfloat("JOBS_RETRY_MAX_DELAY", 300.0),
    },
    # Per job type overrides, e.g. {"ai_matching": {"max_attempts": 5, "timeout": 120}}.
    "TYPES": envjson("JOBS_TYPES", {}),
    "DEFAULT_TIMEOUT": envint("JOBS_DEFAULT_TIMEOUT", 600),
    # At most one progress event per job per interval (the first, the last and 100 %
    # are always recorded).
    "PROGRESS_INTERVAL": envfloat("JOBS_PROGRESS_INTERVAL", 1.0),
    # A running job's worker touches heartbeat_at this often; a job whose heartbeat is
    # older than STALE_AFTER is taken back from its (dead) worker.
    "HEARTBEAT_INTERVAL": envfloat("JOBS_HEARTBEAT_INTERVAL", 5.0),
    "STALE_AFTER": envfloat("JOBS_STALE_AFTER", 30.0),
    # A queued job whose task never reached a worker (lost enqueue) is enqueued again.
    "REQUEUE_AFTER": envfloat("JOBS_REQUEUE_AFTER", 600.0),
    # How often each cluster's pusher looks for due retries and stale jobs.
    "DISPATCH_INTERVAL": envfloat("JOBS_DISPATCH_INTERVAL", 0.5),
    "SWEEP_INTERVAL": envfloat("JOBS_SWEEP_INTERVAL", 5.0),
    # Times a node writes follow the database's clock where its own is off by more than a second
    # (jobs/clock.py); off, each node writes its own clock as it is.
    "CLOCK_FROM_DATABASE": envbool("JOBS_CLOCK_FROM_DATABASE", "true"),
}
WORKER_HOSTNAME = envstr("WORKER_HOSTNAME", socket.gethostname())

# Periodic work run by django-q2's scheduler: name -> function and interval in minutes
# (0 turns a task off). Synced into django-q2's Schedule table after every migrate.
PERIODIC_TASKS = {
    "run_health_checks": {
        "func": "monitoring.tasks.run_health_checks",
        "minutes": envint("HEALTH_CHECK_INTERVAL_MINUTES", 1),
    },
    "prune_monitoring": {
        "func": "monitoring.tasks.prune_monitoring",
        "minutes": envint("RETENTION_PRUNE_INTERVAL_MINUTES", 60),
    },
}

# --- Alerts (alerts/, docs/alerts.md) -----------------------------------------------------
_SEVERITIES = ("info", "warning", "error", "critical")
ALERTS = {
    # Who is told, per severity: email addresses, http(s) webhook URLs (generic JSON) and
    # slack:<incoming webhook URL>, comma-separated.
    "RECIPIENTS": {s: envlist(f"ALERTS_RECIPIENTS_{s.upper()}") for s in _SEVERITIES},
    # Who is told in addition when an alert of that severity stays unresolved too long.
    "ESCALATION_RECIPIENTS": {s: envlist(f"ALERTS_ESCALATION_RECIPIENTS_{s.upper()}") for s in _SEVERITIES},
    # Minutes an unresolved alert waits before it is escalated (0: never).
    "ESCALATE_AFTER_MINUTES": {
        s: envint(f"ALERTS_ESCALATE_AFTER_MINUTES_{s.upper()}", default)
        for s, default in zip(_SEVERITIES, (0, 240, 60, 15))
    },
    # An unresolved alert that keeps occurring notifies again after this many minutes (0: never).
    "REPEAT_AFTER_MINUTES": envint("ALERTS_REPEAT_AFTER_MINUTES", 60),
    # An acknowledged alert ("someone is on it") is neither escalated nor notified again for
    # this many minutes; unresolved after that, it escalates (if due) and repeats as before.
    "ACKNOWLEDGE_MINUTES": envint("ALERTS_ACKNOWLEDGE_MINUTES", 60),
    # A condition back within this many minutes of clearing by itself reopens its alert (flapping)
    # instead of raising a new one, and a reopened alert clears once it has stayed clear this long (0: off).
    "FLAP_MINUTES": envint("ALERTS_FLAP_MINUTES", 15),
    # Per rule overrides of the defaults in alerts/rules.py, e.g. {"job_failure": {"severity": "critical"}}.
    "RULES": envjson("ALERTS_RULES", {}),
    # Each delivery attempt (SMTP or HTTP) gives up after DELIVERY_TIMEOUT seconds; failed
    # attempts are retried with backoff, min(base * 2**attempt, max) plus jitter.
    "DELIVERY_TIMEOUT": envfloat("ALERTS_DELIVERY_TIMEOUT", 10.0),
    "DELIVERY_MAX_ATTEMPTS": envint("ALERTS_DELIVERY_MAX_ATTEMPTS", 6),
    "DELIVERY_BASE_DELAY": envfloat("ALERTS_DELIVERY_BASE_DELAY", 30.0),
    "DELIVERY_MAX_DELAY": envfloat("ALERTS_DELIVERY_MAX_DELAY", 1800.0),
}
PERIODIC_TASKS.update(
    {
        # Deliveries due for a retry, and ones whose worker was lost mid-send.
        "alerts.deliveries": {
            "func": "alerts.tasks.dispatch_due_deliveries",
            "minutes": envint("ALERTS_DELIVERY_SWEEP_MINUTES", 1),
        },
        "alerts.escalation": {
            "func": "alerts.tasks.escalate_due_alerts",
            "minutes": envint("ALERTS_ESCALATION_SWEEP_MINUTES", 1),
        },
        # The performance degradation rule compares recent p95s with their baselines.
        "alerts.performance": {
            "func": "alerts.tasks.check_performance",
            "minutes": envint("ALERTS_PERFORMANCE_CHECK_MINUTES", 10),
        },
    }
)

# The AI matching service called by the `ai_matching` job type. In the demo it points at
# the simulated service this project serves itself (DEMO_MODE).
AI_MATCHING_URL = os.getenv("AI_MATCHING_URL", "")
AI_MATCHING_API_KEY = os.getenv("AI_MATCHING_API_KEY", "")
AI_MATCHING_TIMEOUT = envfloat("AI_MATCHING_TIMEOUT", 10.0)
DEMO_MODE = envbool("DEMO_MODE", "false")
# Shares of calls the simulated service fails: 2 % (an ai_matching attempt makes 1-8 calls: about
# 8 % of attempts fail and are retried), and during its overload, one minute in twenty.
DEMO_AI_FAILURE_RATE = envfloat("DEMO_AI_FAILURE_RATE", 0.02)
DEMO_AI_OVERLOAD_FAILURE_RATE = envfloat("DEMO_AI_OVERLOAD_FAILURE_RATE", 0.4)
# The key the simulated service accepts (the client sends AI_MATCHING_API_KEY).
DEMO_AI_SERVICE_KEY = envstr("DEMO_AI_SERVICE_KEY", AI_MATCHING_API_KEY)

# --- Health checks, /metrics, retention (docs/health-and-metrics.md) -------------------------


def envthresholds(name: str, warning: float, critical: float) -> tuple[float, float]:
    """(warning, critical) from HEALTH_<name>_WARNING / HEALTH_<name>_CRITICAL."""
    return envfloat(f"HEALTH_{name}_WARNING", warning), envfloat(f"HEALTH_{name}_CRITICAL", critical)


HEALTH = {
    # Seconds one check may take before it is recorded as critical (timed out).
    "CHECK_TIMEOUT": envfloat("HEALTH_CHECK_TIMEOUT", 15.0),
    # A value at or above a threshold gets that status.
    "THRESHOLDS": {
        "database.latency_ms": envthresholds("DB_LATENCY_MS", 100, 1000),
        "database.connections_pct": envthresholds("DB_CONNECTIONS_PCT", 80, 95),
        "api.latency_ms": envthresholds("API_LATENCY_MS", 1000, 3000),
        "cpu.percent": envthresholds("CPU_PCT", 85, 95),
        "memory.percent": envthresholds("MEMORY_PCT", 85, 95),
        "disk.percent": envthresholds("DISK_PCT", 85, 95),
        "jobs.queued": envthresholds("QUEUED_JOBS", 100, 1000),
        "jobs.oldest_queued_age_s": envthresholds("QUEUE_AGE_S", 300, 900),
        "jobs.stale": envthresholds("STALE_JOBS", 1, 5),
        "jobs.silent": envthresholds("SILENT_JOBS", 1, 5),
        "jobs.workers_lost": envthresholds("WORKERS_LOST", 1, 5),
        "jobs.failure_rate_pct": envthresholds("FAILURE_RATE_PCT", 25, 50),
        # Alert notifications that gave up within FAILURE_RATE_WINDOW_MINUTES: paging is broken.
        "alerts.deliveries_failed": envthresholds("DELIVERIES_FAILED", 1, 5),
        # % of the job attempts calling an external service (those of the job types that failed
        # calling it) that failed on it within SERVICE_FAILED_CALLS_WINDOW_MINUTES, once at least
        # FAILURE_RATE_MIN_ATTEMPTS ended: as the attempts' failure rate above.
        "api.failed_calls_pct": envthresholds("API_FAILED_CALLS_PCT", 25, 50),
    },
    # Attempt failure rate over this many minutes, once at least MIN_ATTEMPTS ended in it.
    "FAILURE_RATE_WINDOW_MINUTES": envint("HEALTH_FAILURE_RATE_WINDOW_MINUTES", 15),
    "FAILURE_RATE_MIN_ATTEMPTS": envint("HEALTH_FAILURE_RATE_MIN_ATTEMPTS", 5),
    # Each worker node samples its own cpu, memory, disk and clock every health-check interval
    # (monitoring/sampler.py); false: no node does (the hosts are watched by other means).
    "SAMPLE_NODE_RESOURCES": envbool("HEALTH_SAMPLE_NODE_RESOURCES", "true"),
    "CPU_SAMPLE_SECONDS": envfloat("HEALTH_CPU_SAMPLE_SECONDS", 0.5),
    "DISK_PATH": envstr("HEALTH_DISK_PATH", "/"),
    # HTTP services probed besides the AI matching service (AI_MATCHING_URL + /health):
    # [{"name": "webhook", "url": "https://…/health", "timeout": 2}]
    "EXTERNAL_SERVICES": envjson("HEALTH_EXTERNAL_SERVICES", []),
    "SERVICE_TIMEOUT": envfloat("HEALTH_SERVICE_TIMEOUT", 5.0),
    # Each service's failed job calls are counted over this many minutes (a recent window: a
    # failure an hour ago says little about the service now).
    "SERVICE_FAILED_CALLS_WINDOW_MINUTES": envint("HEALTH_SERVICE_FAILED_CALLS_WINDOW_MINUTES", 5),
    # Job types that must complete regularly, as a dead man's switch: {"imports.candidates": 1440}
    # is late (warning) when none completed for 1440 minutes, missed (critical) past twice that.
    "EXPECTED_JOBS": envjson("HEALTH_EXPECTED_JOBS", {}),
    # django-q2 workers that should be alive, all clusters together: fewer is a warning on
    # cluster.workers (a node gone, a deploy that failed on one). 0: not judged (a node gone is
    # still named in its message, without changing its status: a scale-down is no incident).
    "EXPECTED_WORKERS": envint("HEALTH_EXPECTED_WORKERS", 0),
    # A component not reported for this long (a removed service) leaves the overall status.
    "FORGET_AFTER_MINUTES": envint("HEALTH_FORGET_AFTER_MINUTES", 15),
    # No worker seen this long (three missed scheduled checks by default): the dashboard says the
    # checks stopped and the cluster_watchdog command raises its alert. 0: never judged.
    "STALE_AFTER_MINUTES": envint("HEALTH_STALE_AFTER_MINUTES", 3 * PERIODIC_TASKS["run_health_checks"]["minutes"]),
}

# /metrics (Prometheus): a scraper sends `Authorization: Bearer <METRICS_TOKEN>`; without a
# token only logged-in users allowed to view metrics get it.
METRICS_TOKEN = os.getenv("METRICS_TOKEN", "")
# The execution-time histogram covers attempts completed in the last N minutes.
METRICS_HISTOGRAM_WINDOW_MINUTES = envint("METRICS_HISTOGRAM_WINDOW_MINUTES", 5)

# Days kept per table (0 keeps everything), deleted in batches by prune_monitoring.
RETENTION_DAYS = {
    "job_execution_logs": envint("RETENTION_JOB_EXECUTION_LOGS_DAYS", 45),
    "system_health_metrics": envint("RETENTION_SYSTEM_HEALTH_METRICS_DAYS", 30),
}
RETENTION_BATCH_SIZE = envint("RETENTION_BATCH_SIZE", 5000)

# --- Auth, i18n, static --------------------------------------------------------------------
# The dashboard's login page (Django auth); logout is a POST from the dashboard's header.
# ModelBackend reading a user's permissions in one query, on Postgres with the user (every request).
AUTHENTICATION_BACKENDS = ["monitoring.auth_backends.PermissionBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
# Failed passwords allowed per client address and username, and per address alone, in MINUTES
# from the first, before logging in is refused until then (monitoring.login).
LOGIN_THROTTLE = {
    "FAILURES": envint("LOGIN_FAILURES_ALLOWED", 5),
    "PER_ADDRESS": envint("LOGIN_FAILURES_PER_ADDRESS", 50),
    "MINUTES": envint("LOGIN_LOCKOUT_MINUTES", 15),
}
# Proxies in front of the web processes that each append the address they received from to
# X-Forwarded-For: the client's address is the one the outermost of them saw (login throttling).
# 0: REMOTE_ADDR, since the header is whatever the client wrote.
TRUSTED_PROXIES = envint("TRUSTED_PROXIES", 0)
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
# Admin shows times to the second, with their zone (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "/static/"
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
# collectstatic (at build time) writes a gzip copy of each file beside it, which WhiteNoise
# serves to clients that accept it (htmx: 51 kB -> 17 kB). Names stay as they are: no manifest
# to build before the first start, and WhiteNoise's short max-age keeps a deploy visible.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve from the apps' static folders directly (no collectstatic needed for runserver).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = envstr("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))  # for the file-based backend
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "false")
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "jobmonitor@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "django-q": {"level": envstr("Q_LOG_LEVEL", "WARNING")},
        "httpx": {"level": "WARNING"},  # one INFO line per request otherwise
    },
}
