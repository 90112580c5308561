"""The design's HealthService: is everything the jobs depend on working, and how well?

Each check returns components, one per thing measured: {metric_type, metric_name,
metric_value, status, details}; details always hold a human `message`. A run stores one
`system_health_metrics` row per component, all with the run's timestamp, then sends
`health_checked`. The checks run concurrently (HTTP probes and the resource sample off the
database thread); one that crashes or takes longer than HEALTH["CHECK_TIMEOUT"] makes its
components critical, with the reason, and never stops the others.

Every method named in the design is awaitable; `manage.py run_health_checks` and the
periodic task call the `_sync` twins.
"""

import asyncio
import logging
import math
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
import psutil
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, F, Max, Min, Q, Window
from django.db.models.fields.json import KT
from django.db.models.functions import Greatest, Left, RowNumber
from django.utils.translation import ngettext

from alerts.models import DeliveryStatus, NotificationDelivery
from jobs import clock
from jobs.db import heartbeats_stale_before
from jobs.errors import WorkerLostError, recorded_type
from jobs.models import ACTIVE_STATUSES, Job, JobStatus, JobTypePause
from jobs.payloads import clip, to_json_value, url_origin
from jobs.registry import unpadded
from monitoring.models import (
    EXPIRES_SOON,
    EventType,
    HealthStatus,
    JobExecutionLog,
    MetricType,
    SystemHealthMetric,
)
from monitoring.pending import DATABASE_UNAVAILABLE, reset_broken_connection
from monitoring.schema import schema_problems
from monitoring.signals import health_checked
from monitoring.templatetags.dashboard import duration
from monitoring.timeline import attempt_clock, too_quiet_q
from monitoring.tokens import IN_USE, api_tokens_expiring_in_use

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"
WORKER_LOST = recorded_type(WorkerLostError)  # error_details["type"] of an attempt taken back by the sweep
_SEVERITY = {HealthStatus.HEALTHY: 0, HealthStatus.WARNING: 1, HealthStatus.CRITICAL: 2}
MAX_METRIC_VALUE = 99_999_999.99  # DECIMAL(10, 2)
MAX_SILENT_LISTED = 5
MAX_TOKENS_LISTED = 5
MAX_GONE_HOSTS_LISTED = 10
# A node whose resource samples stopped this many intervals ago is gone (one late sample is not).
GONE_AFTER_SAMPLES = 3
# What attempt_clock() reads of a job.
SILENT_JOB_FIELDS = ("id", "job_type", "status", "updated_at", "attempt_started_at", "heartbeat_at", "worker")


def worst(statuses) -> str:
    """The worst of some statuses; "unknown" when there are none."""
    statuses = list(statuses)
    if not statuses:
        return UNKNOWN
    return max(statuses, key=lambda status: _SEVERITY.get(status, 2))


def grade(value: float, thresholds: tuple[float | None, float | None]) -> str:
    """healthy, warning or critical: a value at or above a threshold gets that status."""
    warning, critical = thresholds
    if critical is not None and value >= critical:
        return HealthStatus.CRITICAL
    if warning is not None and value >= warning:
        return HealthStatus.WARNING
    return HealthStatus.HEALTHY


def graded_percent(percent: float, thresholds: tuple[float | None, float | None]) -> str:
    """A percentage in whole numbers, or with the decimals it takes not to reach a threshold it is
    under: 50 of 101 is "49.5", a warning, where "50" read as critical."""
    for digits in range(3):
        text = f"{percent:.{digits}f}"
        if grade(float(text), thresholds) == grade(percent, thresholds):
            break
    return text


def component(metric_type: str, metric_name: str, value: float, status: str, message: str, **details) -> dict:
    if value is None or not math.isfinite(value):
        value = 0.0
    return {
        "metric_type": str(metric_type),
        "metric_name": metric_name,
        "metric_value": round(max(-MAX_METRIC_VALUE, min(MAX_METRIC_VALUE, float(value))), 2),
        "status": str(status),
        # Plain JSON: some values come from libraries (django-q2's statuses are lazy strings).
        "details": to_json_value({"message": message, **details}),
    }


def _result(components: list[dict]) -> dict:
    return {"status": worst(c["status"] for c in components), "components": components}


def _thresholds(name: str) -> tuple[float | None, float | None]:
    return tuple(settings.HEALTH["THRESHOLDS"][name])


def external_services() -> list[dict]:
    """The HTTP services to probe: the AI matching service, then HEALTH["EXTERNAL_SERVICES"].

    Raises ImproperlyConfigured naming the entry that is wrong (also reported by
    `manage.py check`).
    """
    default_timeout = settings.HEALTH["SERVICE_TIMEOUT"]
    configured = settings.HEALTH["EXTERNAL_SERVICES"] or []
    if not isinstance(configured, list):
        raise ImproperlyConfigured("HEALTH_EXTERNAL_SERVICES must be a JSON list of {name, url, timeout}")
    services = []
    if settings.AI_MATCHING_URL:
        services.append(
            {"name": "ai_matching", "url": settings.AI_MATCHING_URL.rstrip("/") + "/health", "timeout": default_timeout}
        )
    for i, entry in enumerate(configured):
        where = f"HEALTH_EXTERNAL_SERVICES[{i}]"
        if not isinstance(entry, dict):
            raise ImproperlyConfigured(f"{where} must be an object with name and url")
        name, url, timeout = entry.get("name"), entry.get("url"), entry.get("timeout", default_timeout)
        if not isinstance(name, str) or not 0 < len(name) <= 100:
            raise ImproperlyConfigured(f"{where}.name must be a text of 1 to 100 characters")
        if not isinstance(url, str) or not _is_http_url(url):
            raise ImproperlyConfigured(f"{where}.url must be an http(s) URL")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 300:
            raise ImproperlyConfigured(f"{where}.timeout must be a number of seconds between 0 and 300")
        if any(service["name"] == name for service in services):
            raise ImproperlyConfigured(f"{where}.name {name!r} is used twice")
        services.append({"name": name, "url": url, "timeout": float(timeout)})
    return services


def expected_job_component(job_type: str) -> str:
    """jobs.imports.candidates.last_completed_age_s: seconds since one last completed."""
    return f"jobs.{job_type}.last_completed_age_s"


# A component's name is a metric_name of at most 100 characters.
MAX_EXPECTED_JOB_TYPE = 100 - len(expected_job_component(""))


def expected_jobs() -> dict[str, float]:
    """{job type: minutes} from HEALTH["EXPECTED_JOBS"]: each job type must complete at least
    that often. Raises ImproperlyConfigured naming the entry that is wrong (`manage.py check`)."""
    configured = settings.HEALTH["EXPECTED_JOBS"]
    if configured is None:
        return {}
    if not isinstance(configured, dict):
        raise ImproperlyConfigured('HEALTH_EXPECTED_JOBS must be a JSON object {"job type": minutes}')
    for job_type, minutes in configured.items():
        where = f"HEALTH_EXPECTED_JOBS[{job_type!r}]"
        if not job_type or len(job_type) > MAX_EXPECTED_JOB_TYPE or not job_type.isprintable():
            limit = MAX_EXPECTED_JOB_TYPE
            raise ImproperlyConfigured(f"{where}: a job type name is 1 to {limit} printable characters here")
        try:
            unpadded(job_type)  # the API's and the dashboard's rule
        except ValueError:
            raise ImproperlyConfigured(f"{where}: a job type name does not begin or end with a space") from None
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not 0 < minutes <= 527_040:
            raise ImproperlyConfigured(f"{where} must be a number of minutes above 0, at most 527040 (a year)")
    return {job_type: float(minutes) for job_type, minutes in configured.items()}


def origin_as_called(url: str) -> str:
    """The origin a failed job call to `url` is recorded under (jobs.errors): httpx's writing of
    the URL (host in lower case), so a service configured as written still matches."""
    try:
        return url_origin(str(httpx.URL(url)))
    except httpx.InvalidURL:
        return url_origin(url)


MAX_LATEST_ERROR_CHARS = 200


def failed_calls_by_origin(origins, *, since: datetime, until: datetime) -> dict[str, dict]:
    """Job attempts that failed calling each of these service origins between `since` and `until`:
    {origin: {"failed": count, "job_types": [...], "error_type", "error_message", "http_status"}},
    the last three of the newest failure; an origin with none is left out.

    One query, counted in the database: the failures of each origin and job type numbered newest
    first, keeping the first, with the count over them all. It reads the window's error events
    only, over the partial index on error events (job_logs_error_time_idx).
    """
    if not origins:
        return {}
    origin, job_type = F("origin"), F("job__job_type")
    rows = (
        JobExecutionLog.objects.filter(
            event_type=EventType.ERROR,
            timestamp__gte=since,
            timestamp__lte=until,
            # The JSON key lookup, not KT: on SQLite, KT IN (...) reads the values as JSON ("malformed JSON").
            error_details__service_origin__in=list(origins),
        )
        .annotate(origin=KT("error_details__service_origin"))
        .annotate(
            failed=Window(Count("id"), partition_by=[origin, job_type]),
            newest=Window(
                RowNumber(), partition_by=[origin, job_type], order_by=[F("timestamp").desc(), F("id").desc()]
            ),
        )
        .filter(newest=1)
        .values(
            "origin",
            "failed",
            "timestamp",
            job_type=job_type,
            error_type=KT("error_details__type"),
            error_message=Left(KT("error_details__message"), MAX_LATEST_ERROR_CHARS),
            http_status=KT("error_details__http_status"),
        )
        .order_by("timestamp")
    )
    calls: dict[str, dict] = {}
    for row in rows:  # oldest first: each origin keeps its newest failure's fields
        origin_calls = calls.setdefault(row["origin"], {"failed": 0, "job_types": []})
        origin_calls["failed"] += row["failed"]
        origin_calls["job_types"].append(row["job_type"])
        origin_calls.update(error_type=row["error_type"], error_message=row["error_message"])
        origin_calls["http_status"] = row["http_status"]
    for origin_calls in calls.values():
        origin_calls["job_types"].sort()
    return calls


def attempts_ended_by_job_type(job_types, *, since: datetime, until: datetime) -> dict[str, int]:
    """{job type: attempts of it that completed or failed between `since` and `until`}, over the
    outcomes' index. Not the cancelled: a queued job cancelled never ran (an operator cancelling
    the backlog during an outage made 7 failures of 7 attempts read 7 of 38, healthy), and an
    attempt that failed before its cancel won has its error event already."""
    if not job_types:
        return {}
    ended = (
        JobExecutionLog.objects.filter(
            event_type__in=(EventType.COMPLETED, EventType.ERROR),
            timestamp__gte=since,
            timestamp__lte=until,
            job__job_type__in=job_types,
        )
        .values_list("job__job_type")
        .annotate(ended=Count("id"))
        .order_by()
    )
    return dict(ended)


def describe_failed_call(call: dict) -> str:
    """The newest failed call in a few words: "HTTP 503", or "ReadTimeout: timed out" (bounded)."""
    if call["http_status"] is not None:
        return f"HTTP {call['http_status']}"  # the message names the full URL: left out
    error_type = (call["error_type"] or "error").rpartition(".")[2]
    return clip(f"{error_type}: {call['error_message']}", MAX_LATEST_ERROR_CHARS)


def _expiring_token(token: dict, now: datetime) -> str:
    """A token by name and owner, never its secret: 'ci deploy' of alice (expires in 2d 3h)."""
    if token["expires_at"] <= now - timedelta(seconds=1):
        when = f"expired {duration((now - token['expires_at']).total_seconds())} ago"
    elif token["expires_at"] <= now:
        when = "expired just now"  # not "expired 0.0 s ago"
    else:
        when = f"expires in {duration((token['expires_at'] - now).total_seconds())}"
    return f"{token['name']!r} of {token['user__username']} ({when})"


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError past 65535
    except ValueError:  # also an unclosed IPv6 host ("http://[")
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


@contextmanager
def _statement_timeout(seconds: float):
    """On Postgres, a query of this check that hangs (waiting on a lock) is cancelled."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{int(seconds * 1000)}ms"])
        yield


class HealthService:
    def __init__(self, external_services: list[dict] | None = None):
        # None: read from settings at each run (so a change of settings applies at once).
        self.external_services = external_services

    @property
    def check_timeout(self) -> float:
        return settings.HEALTH["CHECK_TIMEOUT"]

    # --- running every check ------------------------------------------------------------

    async def run_health_checks(self, *, resources: bool = True) -> dict:
        """Run every check, store one row per component, send health_checked.

        `resources`: with this host's resources (cpu, memory, disk, clock). The scheduled run
        leaves them out: every node samples its own (sample_node_resources_sync), and the node
        the schedule landed on would store its own twice.

        Returns {"status", "checked_at", "components": [..., each with its timestamp]}, the
        shape of latest_health().
        """
        checked_at = clock.now()
        # Each check, the metric type of its components, and their names (for a crash).
        checks = [
            ("check_database_health", MetricType.DATABASE, self._database_components),
            ("validate_table_structures", MetricType.DATABASE, lambda: ["database.schema"]),
            ("check_external_services", MetricType.API, self._service_components),
            ("check_job_queue", MetricType.JOB_QUEUE, self._job_queue_components),
            ("check_expected_jobs", MetricType.JOB_QUEUE, self._expected_job_components),
            ("check_api_tokens", MetricType.JOB_QUEUE, lambda: ["api_tokens.expiring"]),
        ]
        if resources:
            checks += self._resource_checks()
        results = await asyncio.gather(*(self._contained(*check) for check in checks))
        components = [c for result in results for c in result["components"]]
        for c in components:
            c["timestamp"] = checked_at
        await sync_to_async(self._store)(components, checked_at)
        return {"status": worst(c["status"] for c in components), "checked_at": checked_at, "components": components}

    def run_health_checks_sync(self, *, resources: bool = True) -> dict:
        return async_to_sync(self.run_health_checks)(resources=resources)

    def _resource_checks(self) -> list[tuple]:
        return [
            ("check_system_resources", MetricType.RESOURCE, self._resource_components),
            ("check_node_clock", MetricType.RESOURCE, lambda: []),  # unread, it is not judged
        ]

    async def sample_node_resources(self) -> list[SystemHealthMetric]:
        """This node's resources (cpu, memory, disk, and its clock on Postgres), stored and judged
        as a run's are: rows with the sample's time and `details.host`, and health_checked with
        this host's previous statuses, so its alerts are raised and cleared by its own readings.
        Every node calls it every HEALTH_CHECK_INTERVAL_MINUTES (monitoring.sampler): a host read
        only when the scheduled run landed on it went unread for minutes, and could be forgotten.
        Returns the rows stored (none when the database is unavailable)."""
        checked_at = clock.now()
        results = await asyncio.gather(*(self._contained(*check) for check in self._resource_checks()))
        components = [c for result in results for c in result["components"]]
        for c in components:
            c["timestamp"] = checked_at
        return await sync_to_async(self._store)(components, checked_at)

    def sample_node_resources_sync(self) -> list[SystemHealthMetric]:
        return async_to_sync(self.sample_node_resources)()

    async def _contained(self, check: str, metric_type: str, component_names) -> dict:
        """The check's result, or its components all critical when it crashed or timed out."""
        timeout = self.check_timeout
        if check == "check_external_services":
            timeout = max([timeout] + [s["timeout"] + 1 for s in self._services_or_empty()])
        try:
            return await asyncio.wait_for(getattr(self, check)(), timeout)
        except TimeoutError:
            reason = f"{check} did not finish within {timeout:g}s"
        except Exception as e:
            logger.exception("health check %s crashed", check)
            if isinstance(e, DATABASE_UNAVAILABLE):
                await sync_to_async(reset_broken_connection)()
            reason = f"{check} failed: {type(e).__name__}: {e}"
        try:
            names = component_names()
        except Exception:  # e.g. the services setting itself is wrong
            names = []
        # With no component to blame, the check itself is the component.
        names = names or [check]
        failed = {"error": reason, "check": check}
        if metric_type == MetricType.RESOURCE:  # still this host's component, and its alert
            failed["host"] = settings.WORKER_HOSTNAME
        return _result([component(metric_type, n, 0, HealthStatus.CRITICAL, reason, **failed) for n in names])

    def _store(self, components: list[dict], checked_at: datetime) -> list[SystemHealthMetric]:
        try:
            # Each component's status before this run: a host's reading is compared with the same host's.
            previous = {
                component_key(c["metric_type"], c["metric_name"], c["details"]): c["status"]
                for c in latest_health()["components"]
            }
            rows = SystemHealthMetric.objects.bulk_create(
                [
                    SystemHealthMetric(
                        timestamp=checked_at,
                        metric_type=c["metric_type"],
                        metric_name=c["metric_name"],
                        metric_value=Decimal(str(c["metric_value"])),
                        status=c["status"],
                        details=c["details"],
                    )
                    for c in components
                ]
            )
        except DATABASE_UNAVAILABLE:
            # Nowhere to write to: the caller still gets (and prints) the results.
            logger.exception("health check results could not be stored")
            reset_broken_connection()
            return []
        for receiver, response in health_checked.send_robust(sender=HealthService, results=rows, previous=previous):
            if isinstance(response, Exception):
                logger.error("health_checked receiver %r failed: %r", receiver, response)
        return rows

    # --- database ------------------------------------------------------------------------

    async def check_database_health(self) -> dict:
        return await sync_to_async(self.check_database_health_sync)()

    def check_database_health_sync(self) -> dict:
        """Query latency (ms) and, on Postgres, client connections against max_connections and this
        node's clock against the database's (read on the database's thread, like the others)."""
        started = time.perf_counter()
        connection.ensure_connection()
        connect_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        latency = (time.perf_counter() - started) * 1000
        status = grade(latency, _thresholds("database.latency_ms"))
        components = [
            component(
                MetricType.DATABASE,
                "database.latency_ms",
                latency,
                status,
                f"SELECT 1 answered in {latency:.1f} ms",
                vendor=connection.vendor,
                connect_ms=round(connect_ms, 2),
            )
        ]
        if connection.vendor == "postgresql":
            with self._timeout(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*), current_setting('max_connections')::int FROM pg_stat_activity"
                    " WHERE backend_type = 'client backend'"
                )
                used, limit = cursor.fetchone()
            percent = 100 * used / limit if limit else 0
            components.append(
                component(
                    MetricType.DATABASE,
                    "database.connections",
                    used,
                    grade(percent, _thresholds("database.connections_pct")),
                    f"{used} of {limit} connections in use ({percent:.0f} %)",
                    max_connections=limit,
                    percent=round(percent, 1),
                )
            )
        return _result(components)

    async def check_node_clock(self) -> dict:
        return await sync_to_async(self.check_node_clock_sync)()

    def check_node_clock_sync(self) -> dict:
        """On Postgres, this node's clock against the database's: no component where it is not
        read (SQLite, JOBS_CLOCK_FROM_DATABASE off) or the database did not answer."""
        offset = clock.measure_offset() if settings.JOBS["CLOCK_FROM_DATABASE"] else None
        return _result([] if offset is None else [self._clock_component(offset)])

    def _clock_component(self, offset) -> dict:
        """The clock of this node against the database's (jobs/clock.py): off by a second or more
        is a warning until its NTP is fixed, corrected as it is meanwhile. Each node reads its own
        with its resources (sample_node_resources_sync)."""
        host = settings.WORKER_HOSTNAME
        seconds = offset.total_seconds()
        if abs(offset) < clock.CLOCK_TOLERANCE:
            status, message = HealthStatus.HEALTHY, f"the clock of {host} agrees with the database's (within 1 s)"
        else:
            status = HealthStatus.WARNING
            message = (
                f"the clock of {host} is {clock.describe(offset)} the database's: the times it writes are "
                "corrected by as much; fix its NTP"
            )
        # A resource of the node, as its CPU and disk: one alert per host, cleared by that host only.
        # The value is how far off, either way (pages show durations of 0 and more); the sign is in
        # details.offset_s: positive, the node runs behind the database.
        off_by = abs(seconds)
        return component(
            MetricType.RESOURCE, "clock.offset_s", off_by, status, message, host=host, offset_s=round(seconds, 3)
        )

    def _database_components(self) -> list[str]:
        names = ["database.latency_ms"]
        if connection.vendor == "postgresql":
            names.append("database.connections")
        return names

    def _timeout(self):
        return _statement_timeout(self.check_timeout)

    # --- schema ----------------------------------------------------------------------------

    async def validate_table_structures(self) -> dict:
        return await sync_to_async(self.validate_table_structures_sync)()

    def validate_table_structures_sync(self) -> dict:
        """The jobs table and the design's four tables as the code expects them; critical otherwise."""
        with self._timeout():
            problems, tables = schema_problems()
        if problems:
            message = ngettext("%d schema problem: ", "%d schema problems: ", len(problems)) % len(problems)
            message += "; ".join(problems[:5])
        else:
            message = f"{len(tables)} tables match the expected schema"
        return _result(
            [
                component(
                    MetricType.DATABASE,
                    "database.schema",
                    len(problems),
                    HealthStatus.CRITICAL if problems else HealthStatus.HEALTHY,
                    message,
                    problems=problems[:100],
                    tables=tables,
                )
            ]
        )

    # --- external services -----------------------------------------------------------------

    def _services(self) -> list[dict]:
        return external_services() if self.external_services is None else self.external_services

    def _services_or_empty(self) -> list[dict]:
        try:
            return self._services()
        except ImproperlyConfigured:
            return []

    def _service_components(self) -> list[str]:
        return [service["name"] for service in self._services()]

    async def check_external_services(self) -> dict:
        """Each configured HTTP service, probed concurrently, each within its own timeout, and
        judged by the job calls to it that failed lately too: a drill found a service answering
        its health URL while failing every real call. One query counts them for all services."""
        services = self._services()
        window = settings.HEALTH["SERVICE_FAILED_CALLS_WINDOW_MINUTES"]
        origins = [origin_as_called(service["url"]) for service in services]
        async with httpx.AsyncClient(follow_redirects=False) as client:
            probes = asyncio.gather(*(self._probe(client, service) for service in services))
            # On the database thread (as the other checks), while the probes wait on the network.
            counted = sync_to_async(self._failed_calls_sync)(origins, window)
            probed, failed_calls = await asyncio.gather(probes, counted)
        return _result(
            [
                self._with_failed_calls(probe, failed_calls, origin, window)
                for probe, origin in zip(probed, origins, strict=True)
            ]
        )

    def check_external_services_sync(self) -> dict:
        return async_to_sync(self.check_external_services)()

    def _failed_calls_sync(self, origins: list[str], window: int) -> dict[str, dict] | DatabaseError:
        """failed_calls_by_origin() over the last `window` minutes, each with the attempts that
        ended in it of the job types that failed calling it (`ended`); the error if the database
        failed it, so the probes' results still stand (the database has its own components)."""
        now = clock.now()
        since = now - timedelta(minutes=window)
        try:
            with self._timeout():
                calls = failed_calls_by_origin(origins, since=since, until=now)
                job_types = {job_type for call in calls.values() for job_type in call["job_types"]}
                ended = attempts_ended_by_job_type(job_types, since=since, until=now)
        except DatabaseError as e:
            logger.exception("failed job calls could not be counted")
            if isinstance(e, DATABASE_UNAVAILABLE):
                reset_broken_connection()
            return e
        for call in calls.values():
            # At least its own failures: an outcome written after `now` was read in the first query.
            call["ended"] = max(call["failed"], sum(ended.get(job_type, 0) for job_type in call["job_types"]))
        return calls

    def _with_failed_calls(self, probe: dict, failed_calls, origin: str, window: int) -> dict:
        """The probe's component, graded by the share of the job attempts calling the service that
        failed on it (a rate, not a count: ten failures in five minutes are an outage for one
        service and noise for another); the worse of the two decides."""
        details = dict(probe["details"])
        if isinstance(failed_calls, DatabaseError):
            details["message"] += f"; failed job calls not counted: {type(failed_calls).__name__}"
            return {**probe, "details": details}
        call = failed_calls.get(origin)
        details.update(failed_calls=call["failed"] if call else 0, window_minutes=window)
        if not call:
            return {**probe, "details": details}
        failed, ended, minimum = call["failed"], call["ended"], settings.HEALTH["FAILURE_RATE_MIN_ATTEMPTS"]
        percent = 100 * failed / ended
        if ended < minimum:
            calls_status, judged = HealthStatus.HEALTHY, f"fewer than {minimum} attempts: not judged"
        else:
            thresholds = _thresholds("api.failed_calls_pct")
            calls_status, judged = grade(percent, thresholds), f"{graded_percent(percent, thresholds)} %"
        details.update(
            attempts=ended,
            failed_calls_pct=round(percent, 1),
            job_types=call["job_types"],
            latest_error=describe_failed_call(call),
        )
        details["message"] += (
            f"; {failed} of {ended} {', '.join(call['job_types'])} attempts failed calling it in the last "
            f"{window} min: {judged} (latest: {details['latest_error']})"
        )
        return {**probe, "status": worst([probe["status"], calls_status]), "details": details}

    async def _probe(self, client: httpx.AsyncClient, service: dict) -> dict:
        name, url, timeout = service["name"], service["url"], service["timeout"]
        details = {"url": url_origin(url), "timeout_s": timeout}
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(client.get(url, timeout=timeout), timeout)
        except (TimeoutError, httpx.TimeoutException):
            elapsed = (time.perf_counter() - started) * 1000
            return component(
                MetricType.API, name, elapsed, HealthStatus.CRITICAL, f"no answer within {timeout:g}s", **details
            )
        except httpx.HTTPError as e:
            elapsed = (time.perf_counter() - started) * 1000
            message = f"unreachable: {type(e).__name__}: {e}"
            return component(MetricType.API, name, elapsed, HealthStatus.CRITICAL, message, error=message, **details)
        latency = (time.perf_counter() - started) * 1000
        details["status_code"] = response.status_code
        if not response.is_success:
            message = f"answered HTTP {response.status_code} in {latency:.0f} ms"
            return component(MetricType.API, name, latency, HealthStatus.CRITICAL, message, **details)
        status = grade(latency, _thresholds("api.latency_ms"))
        slow = " (slow)" if status != HealthStatus.HEALTHY else ""
        return component(
            MetricType.API, name, latency, status, f"HTTP {response.status_code} in {latency:.0f} ms{slow}", **details
        )

    # --- resources of this host ---------------------------------------------------------------

    async def check_system_resources(self) -> dict:
        # Off the database thread: sampling the CPU takes a moment.
        return await sync_to_async(self.check_system_resources_sync, thread_sensitive=False)()

    def check_system_resources_sync(self) -> dict:
        """CPU, memory and disk of the host running the check, labelled with its name."""
        host = settings.WORKER_HOSTNAME
        cpu = psutil.cpu_percent(interval=settings.HEALTH["CPU_SAMPLE_SECONDS"])
        memory = psutil.virtual_memory()
        disk_path = settings.HEALTH["DISK_PATH"]
        disk = psutil.disk_usage(disk_path)
        gib = 1024**3
        return _result(
            [
                component(
                    MetricType.RESOURCE,
                    "cpu.percent",
                    cpu,
                    grade(cpu, _thresholds("cpu.percent")),
                    f"CPU {cpu:.1f} % on {host}",
                    host=host,
                    cpus=psutil.cpu_count(),
                ),
                component(
                    MetricType.RESOURCE,
                    "memory.percent",
                    memory.percent,
                    grade(memory.percent, _thresholds("memory.percent")),
                    f"memory {memory.percent:.1f} % used on {host} ({memory.available / gib:.1f} GiB available)",
                    host=host,
                    total_gib=round(memory.total / gib, 2),
                    available_gib=round(memory.available / gib, 2),
                ),
                component(
                    MetricType.RESOURCE,
                    "disk.percent",
                    disk.percent,
                    grade(disk.percent, _thresholds("disk.percent")),
                    f"disk {disk_path} {disk.percent:.1f} % full on {host} ({disk.free / gib:.1f} GiB free)",
                    host=host,
                    path=disk_path,
                    total_gib=round(disk.total / gib, 2),
                    free_gib=round(disk.free / gib, 2),
                ),
            ]
        )

    def _resource_components(self) -> list[str]:
        return ["cpu.percent", "memory.percent", "disk.percent"]

    # --- job queue -------------------------------------------------------------------------

    async def check_job_queue(self) -> dict:
        return await sync_to_async(self.check_job_queue_sync)()

    def check_job_queue_sync(self) -> dict:
        """Queued jobs and the oldest one's wait, running, stale and silent jobs, django-q2
        workers alive, and over the last few minutes the attempts' failure rate and those taken
        back from a lost worker (the sweep takes them back within seconds, so `jobs.stale` alone
        would hardly ever see a worker killed by the kernel's OOM killer), and the alert
        notifications that gave up, and the hosts that sampled their resources lately (to name a
        node gone). Four queries (five with silent jobs to name) and a cache read."""
        now = clock.now()
        stale_before = heartbeats_stale_before()
        window = settings.HEALTH["FAILURE_RATE_WINDOW_MINUTES"]
        # Jobs of a paused type wait on purpose: counted apart, not judged as a queue that is stuck.
        held = Q(status=JobStatus.QUEUED, job_type__in=JobTypePause.objects.values("job_type"))
        waiting = Q(status=JobStatus.QUEUED) & ~held
        with self._timeout():
            # Served by the partial indexes on active jobs.
            active = Job.objects.filter(status__in=ACTIVE_STATUSES).aggregate(
                queued=Count("id", filter=waiting),
                held=Count("id", filter=held),
                running=Count("id", filter=Q(status=JobStatus.RUNNING)),
                retrying=Count("id", filter=Q(status=JobStatus.RETRYING)),
                stale=Count("id", filter=Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before)),
                silent=Count("id", filter=too_quiet_q(now)),
                oldest_queued=Min("updated_at", filter=waiting),
            )
            # Served by the partial index on outcome events.
            outcomes = JobExecutionLog.objects.filter(
                event_type__in=(EventType.COMPLETED, EventType.ERROR),
                timestamp__gte=now - timedelta(minutes=window),
                timestamp__lte=now,
            ).aggregate(
                ended=Count("id"),
                failed=Count("id", filter=Q(event_type=EventType.ERROR)),
                lost=Count("id", filter=Q(event_type=EventType.ERROR, error_details__type=WORKER_LOST)),
            )
            # The hosts that sampled their resources lately, to name those gone (health_time_idx).
            hosts_seen = resource_hosts_seen(now)
            # Served by the partial index on failed deliveries.
            undelivered = dict(
                NotificationDelivery.objects.filter(
                    status=DeliveryStatus.FAILED, updated_at__gte=now - timedelta(minutes=window), updated_at__lte=now
                )
                .values_list("channel")
                .annotate(n=Count("id"))
                .order_by("channel")
            )
        # The wait since the job last became queued (submitted, retry dispatched or requeued).
        oldest_age = max(0.0, (now - active["oldest_queued"]).total_seconds()) if active["oldest_queued"] else 0.0
        return _result(
            [
                component(
                    MetricType.JOB_QUEUE,
                    "jobs.queued",
                    active["queued"],
                    grade(active["queued"], _thresholds("jobs.queued")),
                    f"{active['queued']} queued, {active['retrying']} waiting to retry"
                    + (f", {active['held']} held by paused job types" if active["held"] else ""),
                    retrying=active["retrying"],
                    held=active["held"],
                ),
                component(
                    MetricType.JOB_QUEUE,
                    "jobs.oldest_queued_age_s",
                    oldest_age,
                    grade(oldest_age, _thresholds("jobs.oldest_queued_age_s")),
                    f"oldest queued job waiting {duration(oldest_age)}" if active["queued"] else "no job waiting",
                ),
                component(
                    MetricType.JOB_QUEUE,
                    "jobs.running",
                    active["running"],
                    HealthStatus.HEALTHY,
                    f"{active['running']} running",
                ),
                component(
                    MetricType.JOB_QUEUE,
                    "jobs.stale",
                    active["stale"],
                    grade(active["stale"], _thresholds("jobs.stale")),
                    ngettext(
                        "%(n)d running job without a heartbeat for %(after)gs",
                        "%(n)d running jobs without a heartbeat for %(after)gs",
                        active["stale"],
                    )
                    % {"n": active["stale"], "after": settings.JOBS["STALE_AFTER"]},
                    stale_after_s=settings.JOBS["STALE_AFTER"],
                ),
                self._silent_jobs(active["silent"], now),
                component(
                    MetricType.JOB_QUEUE,
                    "jobs.workers_lost",
                    outcomes["lost"],
                    grade(outcomes["lost"], _thresholds("jobs.workers_lost")),
                    ngettext(
                        "%(n)d attempt taken back in the last %(window)s min from a worker that stopped ",
                        "%(n)d attempts taken back in the last %(window)s min from a worker that stopped ",
                        outcomes["lost"],
                    )
                    % {"n": outcomes["lost"], "window": window}
                    + "sending heartbeats (killed? out of memory? its host lost?); "
                    "each is retried while it has attempts left"
                    if outcomes["lost"]
                    else f"no worker was lost in the last {window} min",
                    window_minutes=window,
                ),
                self._failure_rate(outcomes["ended"], outcomes["failed"], window),
                self._cluster(hosts_seen, now),
                self._undelivered(undelivered, window),
            ]
        )

    async def check_expected_jobs(self) -> dict:
        return await sync_to_async(self.check_expected_jobs_sync)()

    def check_expected_jobs_sync(self) -> dict:
        """For each job type of HEALTH["EXPECTED_JOBS"], how long since one last completed: a
        nightly import that stopped running fails nothing and raises nothing else (the dead
        man's switch of healthchecks.io). Late (warning) past its period, missed (critical) past
        twice it; warning too when none ever completed. One query per job type, each the head
        of jobs_type_finished_idx, and one for which of them are paused."""
        now = clock.now()
        expected = expected_jobs()
        components = []
        with self._timeout():
            paused = set(JobTypePause.objects.filter(job_type__in=list(expected)).values_list("job_type", flat=True))
            for job_type, minutes in expected.items():
                last = (
                    Job.objects.filter(job_type=job_type, status=JobStatus.COMPLETED, finished_at__isnull=False)
                    .order_by("-finished_at")
                    .values("id", "finished_at")
                    .first()
                )
                components.append(self._expected_job(job_type, minutes, last, now, paused=job_type in paused))
        return _result(components)

    def _expected_job(self, job_type: str, minutes: float, last: dict | None, now, *, paused: bool) -> dict:
        reading = self._expected_job_reading(job_type, minutes, last, now)
        if paused:  # late because someone paused it: say so, the alert too (it stays as graded)
            reading["details"]["message"] += f"; {job_type} is paused, its jobs wait"
            reading["details"]["paused"] = True
        return reading

    def _expected_job_reading(self, job_type: str, minutes: float, last: dict | None, now) -> dict:
        period = duration(minutes * 60)
        name = expected_job_component(job_type)
        if last is None:
            message = f"no {job_type} job has completed yet; one is expected every {period}"
            return component(
                MetricType.JOB_QUEUE, name, 0, HealthStatus.WARNING, message, job_type=job_type, every_minutes=minutes
            )
        age = max(0.0, (now - last["finished_at"]).total_seconds())
        ago = f"the last {job_type} job completed {duration(age)} ago"
        if age <= minutes * 60:
            status, message = HealthStatus.HEALTHY, f"{ago} (expected every {period})"
        elif age <= 2 * minutes * 60:
            status, message = HealthStatus.WARNING, f"late: {ago}, expected every {period}"
        else:
            status = HealthStatus.CRITICAL
            message = f"missed: {ago}, expected every {period}; is it still scheduled, and do its runs fail?"
        return component(
            MetricType.JOB_QUEUE,
            name,
            age,
            status,
            message,
            job_type=job_type,
            every_minutes=minutes,
            last_job_id=str(last["id"]),
            last_completed_at=last["finished_at"].isoformat(),
        )

    # --- API tokens --------------------------------------------------------------------------

    async def check_api_tokens(self) -> dict:
        return await sync_to_async(self.check_api_tokens_sync)()

    def check_api_tokens_sync(self) -> dict:
        """API tokens used in the last IN_USE (30 days) that expire within EXPIRES_SOON (7 days),
        or expired since their last use: the program behind each gets 401s once it expires, at
        3 a.m. as likely as not. A warning naming them and their owners (never the secrets), until
        each is renewed and revoked. One query, from the partial index on recently used tokens."""
        now = clock.now()
        with self._timeout():
            fields = ("name", "prefix", "user__username", "expires_at", "last_used_at")
            tokens = list(api_tokens_expiring_in_use(now).values(*fields))
        listed = [
            {
                "name": t["name"],
                "prefix": t["prefix"],
                "owner": t["user__username"],
                "expires_at": t["expires_at"].isoformat(),
                "last_used_at": t["last_used_at"].isoformat(),
            }
            for t in tokens[:MAX_TOKENS_LISTED]
        ]
        status = HealthStatus.HEALTHY
        message = f"no API token used in the last {IN_USE.days} days expires within {EXPIRES_SOON.days} days"
        if tokens:
            named = ", ".join(_expiring_token(t, now) for t in tokens[:MAX_TOKENS_LISTED])
            more = f" and {len(tokens) - len(listed)} more" if len(tokens) > len(listed) else ""
            status = HealthStatus.WARNING
            message = ngettext(
                "%(n)d API token used in the last %(days)d days expires within %(soon)d days or has expired: "
                "%(named)s%(more)s; its program gets 401 once it expires: give it a new token "
                "(manage.py create_api_token), then revoke this one",
                "%(n)d API tokens used in the last %(days)d days expire within %(soon)d days or have expired: "
                "%(named)s%(more)s; their programs get 401 once they expire: give them new tokens "
                "(manage.py create_api_token), then revoke these",
                len(tokens),
            ) % {"n": len(tokens), "days": IN_USE.days, "soon": EXPIRES_SOON.days, "named": named, "more": more}
        return _result(
            [component(MetricType.JOB_QUEUE, "api_tokens.expiring", len(tokens), status, message, tokens=listed)]
        )

    def _expected_job_components(self) -> list[str]:
        return [expected_job_component(job_type) for job_type in expected_jobs()]

    def _job_queue_components(self) -> list[str]:
        return [
            "jobs.queued",
            "jobs.oldest_queued_age_s",
            "jobs.running",
            "jobs.stale",
            "jobs.silent",
            "jobs.workers_lost",
            "jobs.failure_rate_pct",
            "cluster.workers",
            "alerts.deliveries_failed",
        ]

    def _silent_jobs(self, count: int, now) -> dict:
        """Running jobs with no progress report for a quarter of their timeout: likely stuck (a
        call that never returns), and nothing else says so until they time out, which may be
        an hour away. The alert it raises names the longest silent (one more query, only then)."""
        silent = []
        if count:
            last_report = Greatest("updated_at", "attempt_started_at")  # as attempt_clock() reads it
            longest = Job.objects.filter(too_quiet_q(now)).order_by(last_report, "id").only(*SILENT_JOB_FIELDS)
            silent = [
                {
                    "id": str(job.id),
                    "job_type": job.job_type,
                    "silent_s": round(attempt_clock(job, now).silent),
                    "worker": job.worker,
                }
                for job in longest[:MAX_SILENT_LISTED]
            ]
        listed = ", ".join(f"{job['job_type']} {job['id'][:8]} ({duration(job['silent_s'])})" for job in silent)
        more = f" and {count - len(silent)} more" if count > len(silent) else ""
        message = (
            ngettext(
                "%(n)d running job sent no progress report for a quarter of its timeout: %(listed)s%(more)s",
                "%(n)d running jobs sent no progress report for a quarter of their timeout: %(listed)s%(more)s",
                count,
            )
            % {"n": count, "listed": listed, "more": more}
            if count
            else "every running job reported progress within a quarter of its timeout"
        )
        return component(
            MetricType.JOB_QUEUE,
            "jobs.silent",
            count,
            grade(count, _thresholds("jobs.silent")),
            message,
            jobs=silent,
        )

    def _failure_rate(self, ended: int, failed: int, window: int) -> dict:
        percent = 100 * failed / ended if ended else 0.0
        minimum = settings.HEALTH["FAILURE_RATE_MIN_ATTEMPTS"]
        if ended < minimum:
            status, note = HealthStatus.HEALTHY, f" (fewer than {minimum} attempts: not judged)"
        else:
            status, note = grade(percent, _thresholds("jobs.failure_rate_pct")), ""
        return component(
            MetricType.JOB_QUEUE,
            "jobs.failure_rate_pct",
            percent,
            status,
            f"{failed} of {ended} attempts failed in the last {window} min{note}",
            attempts=ended,
            failed=failed,
            window_minutes=window,
        )

    def _undelivered(self, by_channel: dict[str, int], window: int) -> dict:
        """Alert notifications that gave up (every attempt failed, or a permanent error) in the
        window: paging is broken, and the alert whose notification failed says so only on its own
        page. A drill: email down for an hour, every alert's notification failed after its six
        attempts, and neither the health page nor any check said so. The errors themselves stay
        on the alerts' pages: they can quote recipients, which a reader of health may not see."""
        count = sum(by_channel.values())
        message = f"every alert notification of the last {window} min was delivered or is still being tried"
        if count:
            channels = ", ".join(f"{channel} {n}" for channel, n in by_channel.items())
            message = ngettext(
                "%(n)d alert notification could not be delivered in the last %(window)s min (%(channels)s): "
                "nobody was told of that alert; its page has the delivery's error",
                "%(n)d alert notifications could not be delivered in the last %(window)s min (%(channels)s): "
                "nobody was told of those alerts; each alert's page has its delivery errors",
                count,
            ) % {"n": count, "window": window, "channels": channels}
        return component(
            MetricType.JOB_QUEUE,
            "alerts.deliveries_failed",
            count,
            grade(count, _thresholds("alerts.deliveries_failed")),
            message,
            channels=by_channel,
            window_minutes=window,
        )

    def _cluster(self, hosts_seen: dict[str, datetime] | None = None, now: datetime | None = None) -> dict:
        """django-q2 workers alive, by the broker: critical with none (or no broker); a warning with
        fewer than HEALTH["EXPECTED_WORKERS"]. The message names the nodes gone: seen lately by
        their resource samples (`hosts_seen`, resource_hosts_seen()) and silent since, with no
        cluster in the broker. A node gone with no expectation set changes nothing but the message:
        a scale-down is not an incident."""
        # Asked as the watchdog asks, with timeouts of its own: through the shared broker, a Redis
        # that stopped answering held the check past HEALTH_CHECK_TIMEOUT (redis-py's default wait,
        # 5 s a command), and one that refused raised: either way all nine job_queue components
        # were critical, the counts read from the database included. A third of the check's time
        # (the queries come first).
        reading = broker_reading(timeout=self.check_timeout / 3)
        clusters = reading["clusters"]
        workers = sum(c["workers"] for c in clusters)
        if not reading["reachable"]:
            status = HealthStatus.CRITICAL
            message = f"the broker ({reading['broker']}) does not answer: {reading['error']}; jobs will not start"
        elif not clusters:
            status, message = HealthStatus.CRITICAL, "no django-q2 cluster is running: jobs will not start"
        elif not workers:
            running = ngettext("%d cluster running", "%d clusters running", len(clusters)) % len(clusters)
            status, message = HealthStatus.CRITICAL, f"{running} with no worker alive"
        else:
            hosts = ", ".join(sorted({c["host"] for c in clusters}))
            counted = (
                ngettext("%d worker", "%d workers", workers) % workers
                + " in "
                + ngettext("%d cluster", "%d clusters", len(clusters)) % len(clusters)
            )
            status, message = HealthStatus.HEALTHY, f"{counted} on {hosts}"
        expected = max(0, settings.HEALTH["EXPECTED_WORKERS"])
        gone = []
        if reading["reachable"] and workers:
            gone = gone_hosts(hosts_seen or {}, {c["host"] for c in clusters}, now or clock.now())
            if expected and workers < expected:
                status = HealthStatus.WARNING
                message = (
                    f"{workers} of {expected} expected workers alive, "
                    + ngettext("in %d cluster", "in %d clusters", len(clusters)) % len(clusters)
                    + f" on {hosts}"
                )
            elif expected:
                message += f", {expected} expected"
            if gone:
                message += "; " + describe_gone_hosts(gone, now or clock.now())
        return component(
            MetricType.JOB_QUEUE,
            "cluster.workers",
            workers,
            status,
            message,
            clusters=clusters,
            expected_workers=expected,
            gone_hosts=[{"host": host, "last_seen_at": at.isoformat()} for host, at in gone[:MAX_GONE_HOSTS_LISTED]],
        )


health_service = HealthService()


def sample_interval() -> float | None:
    """Seconds between two resource samples of a node: the health checks' interval; None when they
    are off, or the sampling is (HEALTH_SAMPLE_NODE_RESOURCES)."""
    minutes = int(settings.PERIODIC_TASKS["run_health_checks"]["minutes"])
    if minutes <= 0 or not settings.HEALTH["SAMPLE_NODE_RESOURCES"]:
        return None
    return minutes * 60.0


def resource_hosts_seen(now: datetime) -> dict[str, datetime]:
    """{host: its newest resource reading} of the nodes that sampled their resources lately (every
    node samples its own each interval: the sampler), {} when the nodes do not sample. Lately: for
    HEALTH["FORGET_AFTER_MINUTES"] past the GONE_AFTER_SAMPLES intervals that make a node gone, so
    that a gone node is named that long whatever the interval (with the forget span alone, an
    interval of 5 minutes named none: gone after 15, forgotten at 15). One query, a range of
    health_time_idx."""
    interval = sample_interval()
    if interval is None:
        return {}
    since = now - timedelta(seconds=GONE_AFTER_SAMPLES * interval, minutes=settings.HEALTH["FORGET_AFTER_MINUTES"])
    rows = (
        SystemHealthMetric.objects.filter(metric_type=MetricType.RESOURCE, timestamp__gte=since, timestamp__lte=now)
        .annotate(host=HOST)
        .filter(host__isnull=False)
        .values("host")
        .annotate(last=Max("timestamp"))
        .order_by()
    )
    return {row["host"]: row["last"] for row in rows if row["host"]}


def gone_hosts(hosts_seen: dict[str, datetime], live_hosts: set[str], now: datetime) -> list[tuple[str, datetime]]:
    """The nodes gone: whose samples stopped more than GONE_AFTER_SAMPLES intervals ago, with no
    cluster live in the broker; [(host, last seen)], the most recently seen first."""
    interval = sample_interval()
    if interval is None:
        return []
    silent_since = now - timedelta(seconds=GONE_AFTER_SAMPLES * interval)
    gone = [(host, at) for host, at in hosts_seen.items() if at < silent_since and host not in live_hosts]
    return sorted(gone, key=lambda gone_host: (-gone_host[1].timestamp(), gone_host[0]))


def describe_gone_hosts(gone: list[tuple[str, datetime]], now: datetime) -> str:
    """'not seen since 03:12 UTC (4m ago): node-c, node-e; since 03:05 UTC (11m ago): node-f'."""
    by_minute: dict[str, list[str]] = {}
    for host, at in gone[:MAX_GONE_HOSTS_LISTED]:
        minutes = int((now - at).total_seconds() // 60)
        by_minute.setdefault(f"{at:%H:%M} UTC ({minutes}m ago)", []).append(host)
    text = "; since ".join(f"{since}: {', '.join(hosts)}" for since, hosts in by_minute.items())
    more = f" and {len(gone) - MAX_GONE_HOSTS_LISTED} more" if len(gone) > MAX_GONE_HOSTS_LISTED else ""
    return f"not seen since {text}{more}"


def registered_clusters(broker) -> list[dict]:
    """The django-q2 clusters running now, by the broker's stats: each one's monitor refreshes
    its status there every few seconds, so an entry is a cluster seen moments ago."""
    from django_q.conf import Conf
    from django_q.status import Stat

    clusters = []
    for stat in Stat.get_all(broker=broker):
        if stat.status in (Conf.STOPPING, Conf.STOPPED):
            continue
        clusters.append(
            {
                "cluster_id": str(stat.cluster_id),
                "host": str(stat.host),
                "status": str(stat.status),
                "workers": len(stat.workers),
                "pid": stat.pid,
            }
        )
    return clusters


def broker_reading(timeout: float) -> dict:
    """What the broker says (to the cluster.workers check, and to the watchdog when no worker has
    been seen): does it answer, and which clusters are registered with it? It tells a stopped
    cluster from a broker the clusters cannot reach (they run, but take no job and run no
    scheduled check) and from clusters that run but are stuck. {"broker", "reachable", "error",
    "clusters"}; a Redis broker gets `timeout` to connect and to answer (a host dropping packets
    would otherwise hang a cron run).
    """
    import redis
    from django_q.brokers import get_broker
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf

    redis_url = Conf.REDIS if isinstance(Conf.REDIS, str) else None
    label = _redis_label(redis_url) if redis_url else "the broker"
    broker = None
    try:
        # Inside the try: a REDIS_URL that does not parse fails here, and the watchdog must
        # still raise and send its alert (it needs no broker for that).
        broker = get_broker()  # its own: the probe's timeouts stay off the process's shared broker
        if isinstance(broker, Redis) and redis_url:
            broker.connection = redis.from_url(redis_url, socket_connect_timeout=timeout, socket_timeout=timeout)
        elif isinstance(broker, Redis):
            label = "Redis"
        else:
            label = "the database, ORM broker"
        broker.ping()
        clusters = registered_clusters(broker)
    except Exception as e:  # noqa: BLE001 - whatever the broker raises is its answer
        if broker is None and redis_url:
            # The URL's parser may quote part of it (urllib: "Port could not be cast to integer
            # value as '<text before the @>'", i.e. part of a password): name the kind only.
            error = f"{type(e).__name__} setting up the broker: is REDIS_URL a valid redis:// URL?"
        else:
            error = f"{type(e).__name__}: {e}"
        return {"broker": label, "reachable": False, "error": error, "clusters": []}
    finally:
        if isinstance(broker, Redis):
            broker.connection.close()
    return {"broker": label, "reachable": True, "error": "", "clusters": clusters}


def _redis_label(url: str) -> str:
    """A Redis broker by host and port (or socket path), never its URL: it may hold a password."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return f"Redis at {parts.path}"
        return f"Redis at {parts.hostname}:{parts.port or 6379}"
    except ValueError:
        return "Redis (REDIS_URL does not parse)"


# --- reads -----------------------------------------------------------------------------------


def last_checked_at() -> datetime | None:
    """When the health checks last ran (their newest row but the resources; health_time_idx). One
    query. Not the resources: every node samples its own every minute (sample_node_resources_sync),
    and while nodes run, their samples would say the checks ran when the scheduled run stopped."""
    checks = SystemHealthMetric.objects.exclude(metric_type=MetricType.RESOURCE)
    return checks.aggregate(latest=Max("timestamp"))["latest"]


# A component is one metric of one host where the reading names one: the resources (cpu, memory,
# disk, clock) are sampled by each node, each node's its own. Keyed by name
# alone, node-b's healthy disk replaced node-a's full one on every page while its alert stayed open.
HOST = KT("details__host")
COMPONENT = (F("metric_type"), F("metric_name"), HOST)


def host_of(details) -> str | None:
    """The node a stored reading is of (`details.host`), None for a component of the whole system."""
    return (details.get("host") if isinstance(details, dict) else None) or None


def component_key(metric_type: str, metric_name: str, details) -> tuple[str, str, str | None]:
    """What tells one component from another: (metric_type, metric_name, host or None)."""
    return metric_type, metric_name, host_of(details)


def latest_health() -> dict:
    """The latest result of each component, and the overall status (the worst of them).

    {"status": "healthy"|"warning"|"critical"|"unknown", "checked_at": datetime|None,
     "components": [{"metric_type", "metric_name", "host": str|None, "metric_value": float,
                     "status", "details", "timestamp"}, ...]}   sorted by metric_type, metric_name, host.
    A component is a metric of one host where its reading names one (component_key): each worker
    host's cpu, memory, disk and clock are their own components.
    A component not reported for HEALTH["FORGET_AFTER_MINUTES"] before the latest run (a
    service removed from the settings, a host gone) is left out. Two queries, reading only
    the rows of that span (health_time_idx).
    """
    checked_at = last_checked_at()
    if checked_at is None:
        return {"status": UNKNOWN, "checked_at": None, "components": []}
    since = checked_at - timedelta(minutes=settings.HEALTH["FORGET_AFTER_MINUTES"])
    rows = (
        SystemHealthMetric.objects.filter(timestamp__gte=since)
        .annotate(latest=Window(Max("timestamp"), partition_by=COMPONENT))
        .filter(timestamp=F("latest"))
        .order_by("metric_type", "metric_name", HOST)
        .values("metric_type", "metric_name", "metric_value", "status", "details", "timestamp")
    )
    components = {}
    for row in rows:
        row["metric_value"] = float(row["metric_value"])
        row["host"] = host_of(row["details"])
        components.setdefault(component_key(row["metric_type"], row["metric_name"], row["details"]), row)
    components = list(components.values())
    return {"status": worst(c["status"] for c in components), "checked_at": checked_at, "components": components}


def health_histories(*, since: datetime, limit: int = 5000) -> dict[tuple, list[SystemHealthMetric]]:
    """Every component's results since `since`, oldest first (the latest `limit` of each at most):
    {(metric_type, metric_name, host or None): [row, ...]} (component_key), each host's resources
    their own history. One query, over health_time_idx, whatever the number of components (it was
    one per component: 25 components, 25 queries on each poll of the page)."""
    rows = (
        SystemHealthMetric.objects.filter(timestamp__gte=since)
        .annotate(newest_first=Window(RowNumber(), partition_by=COMPONENT, order_by=F("timestamp").desc()))
        .filter(newest_first__lte=limit)
        .order_by("metric_type", "metric_name", HOST, "timestamp")
    )
    histories: dict[tuple, list[SystemHealthMetric]] = {}
    for row in rows:
        histories.setdefault(component_key(row.metric_type, row.metric_name, row.details), []).append(row)
    return histories


# --- is any worker alive? --------------------------------------------------------------------
# The checks and the alert rules run on the django-q2 cluster: when every cluster is down
# nothing runs them, so these reads judge from the database alone, for the dashboard and for
# the cluster_watchdog command that cron runs outside any cluster.

CLUSTER_WORKERS = "cluster.workers"


def stale_after() -> timedelta | None:
    """How long without a sign of a worker before the cluster counts as stopped; None: never judged."""
    minutes = settings.HEALTH["STALE_AFTER_MINUTES"]
    return timedelta(minutes=minutes) if minutes > 0 else None


def checks_stopped(checked_at, now) -> bool:
    """The newest check is older than HEALTH["STALE_AFTER_MINUTES"]: its results are old news."""
    limit = stale_after()
    return bool(checked_at and limit and now - checked_at > limit)


def checks_overdue(now) -> datetime | None:
    """When the scheduled health checks last ran, if that is more than twice their interval ago
    (their task waits for a free worker while every one runs a long job); None when they are on
    time, off, or never ran. One query."""
    minutes = int(settings.PERIODIC_TASKS["run_health_checks"]["minutes"])
    if minutes <= 0:
        return None
    checked_at = last_checked_at()
    if checked_at is None or now - checked_at <= timedelta(minutes=2 * minutes):
        return None
    return checked_at


def worker_liveness(now) -> dict:
    """Has a django-q2 worker been seen within HEALTH["STALE_AFTER_MINUTES"]? From the database
    alone, so a web server or cron on any machine can ask, whichever broker the clusters use.

    A worker is seen by a health check that found one (a cluster.workers reading not critical:
    the scheduled check runs on a worker, while a check run by hand with no cluster reads critical;
    a warning is fewer workers than expected, some alive)
    and by a running job's heartbeat (workers busy with long jobs delay the scheduled checks).
    {"alive", "last_seen_at", "queued", "oldest_queued_at", "short_of_workers"}: the last, whether
    that check found fewer workers than HEALTH_EXPECTED_WORKERS (a warning). Two queries.
    """
    # Over the (metric_type, metric_name, -timestamp) index, newest first.
    last_check, last_status = (
        SystemHealthMetric.objects.filter(
            metric_type=MetricType.JOB_QUEUE,
            metric_name=CLUSTER_WORKERS,
            status__in=(HealthStatus.HEALTHY, HealthStatus.WARNING),
        )
        .order_by("-timestamp")
        .values_list("timestamp", "status")
        .first()
    ) or (None, None)
    # Served by the partial indexes on active jobs.
    jobs = Job.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).aggregate(
        queued=Count("id", filter=Q(status=JobStatus.QUEUED)),
        oldest_queued_at=Min("updated_at", filter=Q(status=JobStatus.QUEUED)),
        last_heartbeat=Max("heartbeat_at", filter=Q(status=JobStatus.RUNNING)),
    )
    last_seen_at = max(filter(None, (last_check, jobs["last_heartbeat"])), default=None)
    limit = stale_after()
    return {
        "alive": last_seen_at is not None and (limit is None or now - last_seen_at <= limit),
        "last_seen_at": last_seen_at,
        "queued": jobs["queued"],
        "oldest_queued_at": jobs["oldest_queued_at"],
        "short_of_workers": last_status == HealthStatus.WARNING,
    }


def current_health(now) -> dict:
    """latest_health() as it stands at `now` (for the dashboard and the API), with "stale" (the
    checks stopped) and "no_worker" (worker_liveness, when no worker has been seen either; else None).

    With no worker the stored statuses are old news: the overall status is critical and the
    stored cluster.workers reading is marked stale rather than shown as the workers it counted
    then. Two queries; four when the checks stopped.
    """
    health = latest_health()
    stale = checks_stopped(health["checked_at"], now)
    liveness = worker_liveness(now) if stale else None
    no_worker = liveness if liveness and not liveness["alive"] else None
    if no_worker:
        health["status"] = HealthStatus.CRITICAL
        for c in health["components"]:
            if (c["metric_type"], c["metric_name"]) == (MetricType.JOB_QUEUE, CLUSTER_WORKERS):
                c["status"], c["stale"] = UNKNOWN, True
    return {**health, "stale": stale, "no_worker": no_worker}
