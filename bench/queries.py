"""Figures 3 and 4: whole requests through Django's test client against the raw SQL of the same numbers.

Requests are authenticated (a session of a user with the view permissions) and go through
every middleware, the API's or the dashboard's permission checks, the query and the
serialization. The raw SQL runs on a plain psycopg connection, as one would in psql.
Measurements alternate between the two and the median is kept.
"""

import time

from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench import baselines
from bench.db import plain_connection
from bench.report import median
from monitoring.metrics import BUCKET_SECONDS, TIMEFRAMES, performance_metrics
from monitoring.permissions import VIEW_JOBS, VIEW_METRICS

METRICS_URL = "/api/monitoring/metrics"
JOBS_API_URL = "/api/monitoring/jobs"
DASHBOARD_URL = "/jobs/"
HTMX_POLL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "job-rows", "HTTP_HX_CURRENT_URL": "http://localhost/jobs/"}


def operator_client() -> Client:
    user, _ = User.objects.get_or_create(username="bench-operator")
    for permission in (VIEW_JOBS, VIEW_METRICS):
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def alternate(ours, raw, reps: int) -> tuple[float, float]:
    """Median seconds of `ours` and of `raw`, run alternately after one warm-up each."""
    ours(), raw()
    ours_times, raw_times = [], []
    for _ in range(reps):
        ours_times.append(timed(ours))
        raw_times.append(timed(raw))
    return median(ours_times), median(raw_times)


def median_time(call, reps: int) -> float:
    call()
    return median(timed(call) for _ in range(reps))


def api_floor(client: Client, reps: int) -> float:
    """An authenticated API request with nothing to return: session, user, permissions, one
    indexed query that finds nothing, serialization. No page of ours can cost less."""
    return median_time(lambda: client.get(JOBS_API_URL, {"job_type": "bench.nothing"}), reps)


def count_queries(call) -> int:
    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)


# --- figure 3: performance metrics ---------------------------------------------------------


def run_metrics(*, reps: int = 9) -> dict:
    client = operator_client()
    results = {"timeframes": {}, "floor_s": api_floor(client, reps)}
    with plain_connection(autocommit=True) as raw_conn:
        for timeframe in ("1h", "24h"):

            def ours(timeframe=timeframe):
                response = client.get(METRICS_URL, {"timeframe": timeframe})
                assert response.status_code == 200, response.content[:500]
                return response

            def raw(timeframe=timeframe):
                until = timezone.now()
                since = until - TIMEFRAMES[timeframe]
                params = {"since": since, "until": until, "size": BUCKET_SECONDS[timeframe]}
                return raw_conn.execute(baselines.METRICS_SQL, params).fetchone()

            ours_s, raw_s = alternate(ours, raw, reps)
            # The same numbers? Compared on a frozen window (the timed calls each end "now").
            now = timezone.now()
            agree = same_metrics(timeframe, now, raw_conn)
            outcomes = raw_conn.execute(
                "SELECT count(*) FROM job_execution_logs WHERE event_type IN ('completed', 'error', 'cancelled') "
                "AND timestamp >= %s AND timestamp < %s",
                (now - TIMEFRAMES[timeframe], now),
            ).fetchone()[0]
            results["timeframes"][timeframe] = {
                "ours_s": ours_s,
                "raw_s": raw_s,
                "queries": count_queries(ours),
                "agree": agree,
                "outcomes_in_window": outcomes,
            }
    return results


def same_metrics(timeframe: str, now, raw_conn) -> bool:
    since = now - TIMEFRAMES[timeframe]
    params = {"since": since, "until": now, "size": BUCKET_SECONDS[timeframe]}
    raw_row = raw_conn.execute(baselines.METRICS_SQL, params).fetchone()
    ours = performance_metrics(timeframe, now=now)
    return baselines.summarize_raw(raw_row) == baselines.summarize_metrics(ours)


# --- figure 4: active jobs, API and dashboard ----------------------------------------------


def run_lists(*, reps: int = 15) -> dict:
    client = operator_client()

    def api():
        response = client.get(JOBS_API_URL)
        assert response.status_code == 200, response.content[:500]
        return response

    def dashboard():
        response = client.get(DASHBOARD_URL, **HTMX_POLL)
        assert response.status_code == 200, response.content[:500]
        return response

    results = {}
    with plain_connection(autocommit=True) as raw_conn:
        active = raw_conn.execute(f"SELECT count(*) FROM jobs WHERE {baselines.ACTIVE}").fetchone()[0]
        for name, ours, sql in (
            ("api", api, baselines.API_PAGE_SQL),
            ("dashboard", dashboard, baselines.DASHBOARD_PAGE_SQL),
        ):
            ours_s, raw_s = alternate(ours, lambda sql=sql: raw_conn.execute(sql).fetchall(), reps)
            results[name] = {"ours_s": ours_s, "raw_s": raw_s, "queries": count_queries(ours)}
        results["active_jobs"] = active
        results["log_rows"] = raw_conn.execute("SELECT count(*) FROM job_execution_logs").fetchone()[0]
    results["api"]["floor_s"] = api_floor(client, reps)
    # The same partial filtered on a job type with no active job here: an empty table rendered.
    results["dashboard"]["floor_s"] = median_time(
        lambda: client.get(DASHBOARD_URL, {"job_type": "demo.fail"}, **HTMX_POLL), reps
    )
    return results

