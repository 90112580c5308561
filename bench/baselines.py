"""The raw SQL the query figures are compared with: each one statement, as one would type it in psql.

METRICS_SQL computes every number `performance_metrics()` returns (counts per job type and
per bucket, execution-time statistics overall, per type and per bucket, errors by class and
type, the top errors with their latest example and job types) in a single statement that
reads the window's outcomes once and its errors once, from the same indexes the application
uses. tests/bench/test_baselines.py checks that the numbers are the same. Buckets are binned
with date_bin, as the application's statement does (integer arithmetic; EXTRACT(EPOCH) per row
is numeric and slow), and numbered only once grouped.
"""

METRICS_SQL = """
WITH outcomes AS MATERIALIZED (
    SELECT l.event_type, l.status, l.execution_time_ms, j.job_type,
           date_bin(%(size)s * interval '1 second', l.timestamp, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket
    FROM job_execution_logs l JOIN jobs j ON j.id = l.job_id
    WHERE l.event_type IN ('completed', 'error', 'cancelled') AND l.timestamp >= %(since)s AND l.timestamp < %(until)s
),
counts AS (
    SELECT GROUPING(job_type, bucket) AS g, job_type, bucket,
           count(*) FILTER (WHERE event_type = 'completed') AS succeeded,
           count(*) FILTER (WHERE event_type = 'error' AND status = 'failed') AS failed,
           count(*) FILTER (WHERE event_type = 'error') AS failed_attempts,
           count(*) FILTER (WHERE event_type = 'cancelled') AS cancelled
    FROM outcomes GROUP BY GROUPING SETS ((job_type), (bucket), ())
),
attempts AS (
    SELECT GROUPING(j.job_type, b.bucket) AS g, j.job_type, b.bucket,
           count(*) AS started, count(*) FILTER (WHERE r.attempt_number > 1) AS retried
    FROM job_retry_history r JOIN jobs j ON j.id = r.job_id
    CROSS JOIN LATERAL (
        SELECT date_bin(%(size)s * interval '1 second', r.started_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket
    ) b
    WHERE r.started_at >= %(since)s AND r.started_at < %(until)s
    GROUP BY GROUPING SETS ((j.job_type), (b.bucket), ())
),
times AS (
    SELECT GROUPING(job_type, bucket) AS g, job_type, bucket, count(*) AS n, avg(execution_time_ms) AS mean,
           percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY execution_time_ms) AS p
    FROM outcomes WHERE event_type = 'completed' AND execution_time_ms IS NOT NULL
    GROUP BY GROUPING SETS ((job_type), (bucket), ())
),
errors AS MATERIALIZED (
    SELECT l.id, l.job_id, l.timestamp, l.error_details->>'error_class' AS error_class,
           l.error_details->>'type' AS exception_type, l.error_details->>'message' AS message,
           l.error_details->>'fingerprint' AS fingerprint
    FROM job_execution_logs l
    WHERE l.event_type = 'error' AND l.timestamp >= %(since)s AND l.timestamp < %(until)s
),
by_kind AS (
    SELECT error_class, exception_type, count(*) AS n FROM errors GROUP BY 1, 2
),
top AS (
    SELECT fingerprint, count(*) AS n, min(timestamp) AS first_seen, max(timestamp) AS last_seen
    FROM errors WHERE fingerprint IS NOT NULL
    GROUP BY 1 ORDER BY n DESC, last_seen DESC, fingerprint LIMIT 10
),
top_latest AS (
    SELECT DISTINCT ON (e.fingerprint) e.fingerprint, e.job_id, e.exception_type, left(e.message, 500) AS message,
           e.error_class
    FROM errors e JOIN top t USING (fingerprint)
    ORDER BY e.fingerprint, e.timestamp DESC, e.id
),
top_types AS (
    SELECT e.fingerprint, array_agg(DISTINCT j.job_type ORDER BY j.job_type) AS types
    FROM errors e JOIN top t USING (fingerprint) JOIN jobs j ON j.id = e.job_id
    GROUP BY 1
)
SELECT
    (SELECT json_agg(json_build_array(g, job_type, extract(epoch FROM bucket)::bigint / %(size)s,
                                      succeeded, failed, failed_attempts, cancelled))
     FROM counts),
    (SELECT json_agg(json_build_array(g, job_type, extract(epoch FROM bucket)::bigint / %(size)s, started, retried))
     FROM attempts),
    (SELECT json_agg(json_build_array(g, job_type, extract(epoch FROM bucket)::bigint / %(size)s, n, mean, p))
     FROM times),
    (SELECT json_agg(json_build_array(error_class, exception_type, n)) FROM by_kind),
    (SELECT json_agg(json_build_array(t.fingerprint, t.n, t.first_seen, t.last_seen, tt.types, l.job_id,
                                      l.exception_type, l.message, l.error_class)
                     ORDER BY t.n DESC, t.last_seen DESC, t.fingerprint)
     FROM top t JOIN top_latest l USING (fingerprint) JOIN top_types tt USING (fingerprint)),
    (SELECT count(DISTINCT fingerprint) FROM errors)
"""

# Grouping set of each row: 1 = per job type, 2 = per bucket, 3 = overall (GROUPING() bits).
PER_TYPE, PER_BUCKET, OVERALL = 1, 2, 3

# The columns the lists read (monitoring.selectors.JOB_SUMMARY_FIELDS; a test keeps them equal).
JOB_COLUMNS = (
    "id, job_type, status, progress, message, attempts, max_attempts, created_at, updated_at, started_at, "
    "attempt_started_at, finished_at, next_attempt_at, cancel_requested_at, heartbeat_at, worker, error_class"
)
ACTIVE = "status IN ('queued', 'running', 'retrying')"

# The API's page: newest activity first, one row past the page to know whether there is a next one.
API_PAGE_SQL = f"SELECT {JOB_COLUMNS} FROM jobs WHERE {ACTIVE} ORDER BY updated_at DESC, id LIMIT 51"

# The dashboard's page: running, retrying, then queued, newest first; and how many there are.
DASHBOARD_PAGE_SQL = f"""
    SELECT {JOB_COLUMNS}, count(*) OVER () AS total FROM jobs WHERE {ACTIVE}
    ORDER BY CASE status WHEN 'running' THEN 0 WHEN 'retrying' THEN 1 ELSE 2 END, created_at DESC, id
    LIMIT 50
"""


# --- the same numbers, from either side (to check that the baseline computes what the endpoint does) ---

COUNTS = ("started", "retried", "succeeded", "failed", "failed_attempts", "cancelled")
STATS = ("mean_ms", "p50_ms", "p95_ms", "p99_ms")
SERIES_COUNTS = ("started", "succeeded", "failed", "failed_attempts", "cancelled")
SERIES = (*SERIES_COUNTS, "p50_ms", "p95_ms")
TOP_EXCEPTION_TYPES = 20


def _rounded(value):
    return None if value is None else round(float(value), 2)


def summarize_raw(row) -> dict:
    """METRICS_SQL's row as {overall, by_job_type, series, errors_by_class, errors_by_type, top_errors,
    error_groups}."""
    counts, attempts, times, kinds, top = (part or [] for part in row[:5])
    groups = {PER_TYPE: {}, PER_BUCKET: {}, OVERALL: {}}

    def entry(g, job_type, bucket) -> dict:
        key = {PER_TYPE: job_type, PER_BUCKET: bucket, OVERALL: None}[g]
        return groups[g].setdefault(key, dict.fromkeys(COUNTS, 0) | dict.fromkeys(STATS))

    for g, job_type, bucket, succeeded, failed, failed_attempts, cancelled in counts:
        entry(g, job_type, bucket).update(
            succeeded=succeeded, failed=failed, failed_attempts=failed_attempts, cancelled=cancelled
        )
    for g, job_type, bucket, started, retried in attempts:
        entry(g, job_type, bucket).update(started=started, retried=retried)
    for g, job_type, bucket, n, mean, percentiles in times:
        if n:
            p50, p95, p99 = percentiles
            entry(g, job_type, bucket).update(
                mean_ms=_rounded(mean), p50_ms=_rounded(p50), p95_ms=_rounded(p95), p99_ms=_rounded(p99)
            )
    by_class, by_type = {}, {}
    for error_class, exception_type, n in kinds:
        by_class[error_class or "unknown"] = by_class.get(error_class or "unknown", 0) + n
        by_type[exception_type or "unknown"] = by_type.get(exception_type or "unknown", 0) + n
    overall = groups[OVERALL].get(None) or dict.fromkeys(COUNTS, 0) | dict.fromkeys(STATS)
    return {
        "overall": overall,
        "by_job_type": groups[PER_TYPE],
        "series": {bucket: {k: stats[k] for k in SERIES} for bucket, stats in groups[PER_BUCKET].items()},
        "errors_by_class": by_class,
        "errors_by_type": dict(sorted(by_type.items(), key=lambda item: (-item[1], item[0]))[:TOP_EXCEPTION_TYPES]),
        "top_errors": [
            (fingerprint, n, tuple(types), str(job_id), exception_type, message, error_class)
            for fingerprint, n, _, _, types, job_id, exception_type, message, error_class in top
        ],
        "error_groups": row[5],
    }


def summarize_metrics(metrics: dict) -> dict:
    """performance_metrics()'s result in the shape of summarize_raw()."""
    size = metrics["bucket_seconds"]
    series = {}
    for point in metrics["series"]:
        if any(point[k] for k in SERIES_COUNTS) or point["p50_ms"] is not None:
            series[int(point["bucket_start"].timestamp()) // size] = {k: point[k] for k in SERIES}
    return {
        "overall": {k: metrics["overall"][k] for k in COUNTS + STATS},
        "by_job_type": {row["job_type"]: {k: row[k] for k in COUNTS + STATS} for row in metrics["by_job_type"]},
        "series": series,
        "errors_by_class": {row["error_class"]: row["count"] for row in metrics["errors_by_class"] if row["count"]},
        "errors_by_type": {row["exception_type"]: row["count"] for row in metrics["errors_by_type"]},
        "top_errors": [
            (
                e["fingerprint"],
                e["count"],
                tuple(e["job_types"]),
                str(e["example_job_id"]),
                e["exception_type"],
                e["message"],
                e["error_class"],
            )
            for e in metrics["top_errors"]
        ],
        "error_groups": metrics["error_groups"],
    }
