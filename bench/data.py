"""Seeded history for the query figures, generated inside Postgres.

Rows come from `INSERT … SELECT` over generate_series: no row crosses the wire, so 5M
events take about a minute on the benchmark machine. Every value is a function of the row
number and the seed (hashint8extended), so the same seed gives the same rows; only the
times move with the moment of the run (each layer ends "now").

A job follows one of five scenarios, with the rows the application writes for it (see
jobs/manager.py): completed at once, completed after a retry, failed after three attempts,
failed at once with a non-retryable error, cancelled while running. The history grows in
layers, each spread evenly over the last 30 days, so every size covers the same span.
"""

from dataclasses import dataclass
from datetime import datetime

import psycopg

SPAN_DAYS = 30
SEED = 20260101
JOB_TYPES = ("ai_matching", "imports.candidates", "outreach.email", "reports.weekly", "demo.sleep")

# (percent of jobs, final status, attempts, final progress) per scenario.
SCENARIOS = {
    0: (84, "completed", 1, 100),
    1: (9, "completed", 2, 100),
    2: (3, "failed", 3, 60),
    3: (3, "failed", 1, 10),
    4: (1, "cancelled", 1, 50),
}

# Events of each scenario: (seq, event_type, status, progress, attempt, at = const_ms + frac * e,
# execution_time_ms = exec_frac * e or NULL, error event, retryable). `e` is the job's own
# execution time (200 ms to 20 s).
EVENTS = {
    0: [
        (1, "queued", "queued", 0, 1, 0, 0, None, False, False),
        (2, "started", "running", 0, 1, 500, 0, None, False, False),
        (3, "progress", "running", 50, 1, 500, 0.5, None, False, False),
        (4, "progress", "running", 100, 1, 500, 1.0, None, False, False),
        (5, "completed", "completed", 100, 1, 501, 1.0, 1.0, False, False),
    ],
    1: [
        (1, "queued", "queued", 0, 1, 0, 0, None, False, False),
        (2, "started", "running", 0, 1, 500, 0, None, False, False),
        (3, "progress", "running", 30, 1, 500, 0.3, None, False, False),
        (4, "error", "retrying", 30, 1, 501, 0.3, 0.3, True, True),
        (5, "retry", "queued", 0, 2, 2501, 0.3, None, False, False),
        (6, "started", "running", 0, 2, 2600, 0.3, None, False, False),
        (7, "progress", "running", 100, 2, 2600, 1.3, None, False, False),
        (8, "completed", "completed", 100, 2, 2601, 1.3, 1.0, False, False),
    ],
    2: [
        (1, "queued", "queued", 0, 1, 0, 0, None, False, False),
        (2, "started", "running", 0, 1, 500, 0, None, False, False),
        (3, "progress", "running", 20, 1, 500, 0.2, None, False, False),
        (4, "error", "retrying", 20, 1, 501, 0.2, 0.2, True, True),
        (5, "retry", "queued", 0, 2, 2501, 0.2, None, False, False),
        (6, "started", "running", 0, 2, 2600, 0.2, None, False, False),
        (7, "progress", "running", 40, 2, 2600, 0.4, None, False, False),
        (8, "error", "retrying", 40, 2, 2601, 0.4, 0.2, True, True),
        (9, "retry", "queued", 0, 3, 6601, 0.4, None, False, False),
        (10, "started", "running", 0, 3, 6700, 0.4, None, False, False),
        (11, "progress", "running", 60, 3, 6700, 0.6, None, False, False),
        (12, "error", "failed", 60, 3, 6701, 0.6, 0.2, True, False),
    ],
    3: [
        (1, "queued", "queued", 0, 1, 0, 0, None, False, False),
        (2, "started", "running", 0, 1, 500, 0, None, False, False),
        (3, "progress", "running", 10, 1, 500, 0.1, None, False, False),
        (4, "error", "failed", 10, 1, 501, 0.1, 0.1, True, False),
    ],
    4: [
        (1, "queued", "queued", 0, 1, 0, 0, None, False, False),
        (2, "started", "running", 0, 1, 500, 0, None, False, False),
        (3, "progress", "running", 50, 1, 500, 0.5, None, False, False),
        (4, "cancelled", "cancelled", 50, 1, 501, 0.5, 0.5, False, False),
    ],
}

# Attempts of each scenario: (attempt, start const_ms, start frac, end const_ms, end frac, status,
# failed, planned delay s).
ATTEMPTS = {
    0: [(1, 500, 0, 501, 1.0, "success", False, None)],
    1: [(1, 500, 0, 501, 0.3, "failed", True, None), (2, 2600, 0.3, 2601, 1.3, "success", False, 2)],
    2: [
        (1, 500, 0, 501, 0.2, "failed", True, None),
        (2, 2600, 0.2, 2601, 0.4, "failed", True, 2),
        (3, 6700, 0.4, 6701, 0.6, "failed", True, 4),
    ],
    3: [(1, 500, 0, 501, 0.1, "failed", True, None)],
    4: [(1, 500, 0, 501, 0.5, "cancelled", False, None)],
}

# Error kinds: (exception type, message, error class). Retried scenarios draw from the
# retryable ones (transient, system), scenario 3 from configuration and data.
ERRORS = [
    ("httpx.ConnectTimeout", "connection timed out", "transient"),
    ("httpx.ReadTimeout", "read timed out", "transient"),
    ("httpx.HTTPStatusError", "Server error '503 Service Unavailable' for url 'https://ai.internal/ai'", "transient"),
    ("httpx.HTTPStatusError", "Server error '502 Bad Gateway' for url 'https://ai.internal/match'", "transient"),
    ("httpx.HTTPStatusError", "Client error '429 Too Many Requests' for url 'https://ai.internal/match'", "transient"),
    ("django.db.utils.OperationalError", "server closed the connection unexpectedly", "transient"),
    ("httpx.ConnectError", "[Errno 111] Connection refused", "transient"),
    ("httpx.RemoteProtocolError", "Server disconnected without sending a response.", "transient"),
    ("TimeoutError", "the CRM export did not finish in 60s", "transient"),
    ("httpx.PoolTimeout", "no connection available in the pool", "transient"),
    ("MemoryError", "out of memory", "system"),
    ("jobs.errors.WorkerLostError", "worker stopped sending heartbeats; attempt abandoned", "system"),
    ("django.core.exceptions.ImproperlyConfigured", "AI_MATCHING_API_KEY is not set", "configuration"),
    ("httpx.HTTPStatusError", "Client error '401 Unauthorized' for url 'https://ai.internal/match'", "configuration"),
    ("httpx.HTTPStatusError", "Client error '403 Forbidden' for url 'https://crm.internal/export'", "configuration"),
    ("django.core.exceptions.ImproperlyConfigured", "SMTP credentials are not set", "configuration"),
    ("django.core.exceptions.ValidationError", "['candidate record is malformed']", "data"),
    ("httpx.HTTPStatusError", "Client error '422 Unprocessable Entity' for url 'https://ai.internal/match'", "data"),
    ("django.db.utils.IntegrityError", "duplicate key value violates unique constraint", "data"),
    ("KeyError", "'job_posting_id'", "data"),
]
RETRYABLE_KINDS = 12  # ERRORS[:12]
TRACEBACK_LINES = 12  # about 1.2 kB of traceback per error event, like a real one


def rows_per_job() -> float:
    """Log rows per job on average, from the scenario mix."""
    return sum(SCENARIOS[s][0] / 100 * len(EVENTS[s]) for s in SCENARIOS)


@dataclass
class Layer:
    jobs: int
    events: int
    attempts: int


def _h(expr: str, salt: int) -> str:
    """A non-negative pseudo-random bigint from `expr` (the row number) and the seed."""
    return f"abs(hashint8extended({expr}, %(seed)s::bigint * 100 + {salt}))"


def _setup(cur) -> None:
    # Session settings of the generator only: nothing here outlives its connection.
    cur.execute("SET synchronous_commit = off")
    cur.execute("SET maintenance_work_mem = '256MB'")
    cur.execute("SET work_mem = '64MB'")
    cur.execute(
        """
        CREATE TEMP TABLE IF NOT EXISTS bench_events (
            scenario int, seq int, event_type text, status text, progress int, attempt int,
            at_ms int, at_frac float8, exec_frac float8, is_error bool, retryable bool)
        """
    )
    cur.execute(
        """
        CREATE TEMP TABLE IF NOT EXISTS bench_attempts (
            scenario int, attempt int, start_ms int, start_frac float8, end_ms int, end_frac float8,
            status text, failed bool, delay_s int)
        """
    )
    cur.execute(
        "CREATE TEMP TABLE IF NOT EXISTS bench_errors (kind int, type text, message text, error_class text)"
    )
    cur.execute("TRUNCATE bench_events, bench_attempts, bench_errors")
    cur.executemany(
        "INSERT INTO bench_events VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [(s, *row) for s, rows in EVENTS.items() for row in rows],
    )
    cur.executemany(
        "INSERT INTO bench_attempts VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [(s, *row) for s, rows in ATTEMPTS.items() for row in rows],
    )
    cur.executemany(
        "INSERT INTO bench_errors VALUES (%s, %s, %s, %s)", [(kind, *error) for kind, error in enumerate(ERRORS)]
    )


def _scenario_sql() -> str:
    """scenario from a 0-99 draw, following SCENARIOS' percentages."""
    cases, upper = [], 0
    for scenario, (percent, *_) in SCENARIOS.items():
        upper += percent
        cases.append(f"WHEN d < {upper} THEN {scenario}")
    return f"CASE {' '.join(cases)} END"


LAYER_SQL = """
    CREATE TEMP TABLE bench_layer AS
    SELECT i, md5(%(tag)s || ':' || i)::uuid AS id, scenario,
           (%(job_types)s::text[])[1 + {h_type} %% {n_types}] AS job_type,
           %(until)s::timestamptz - make_interval(secs => %(span_s)s * (1 - (i - 0.5) / %(n)s)) AS t0,
           200 + ({h_e} %% 19800)::int AS e,
           CASE WHEN scenario = 3 THEN {retryable} + ({h_kind} %% ({n_errors} - {retryable}))
                ELSE {h_kind} %% {retryable} END AS kind
    FROM (SELECT i, {scenario} AS scenario FROM (SELECT i, {h_draw} %% 100 AS d
          FROM generate_series(1, %(n)s::bigint) i) draws) s
"""

JOBS_SQL = """
    INSERT INTO jobs (id, job_type, parameters, status, progress, message, attempts, max_attempts, submitted_by,
                      created_at, updated_at, started_at, attempt_started_at, finished_at, heartbeat_at, worker,
                      next_attempt_at, retry_delay, cancel_requested_at, result, last_error, error_class)
    SELECT l.id, l.job_type, jsonb_build_object('batch', l.i %% 1000, 'source', 'bench'),
           last.status, last.progress, left(coalesce(last.message, ''), 200), a.attempts, 3, 'bench',
           l.t0, last.at, l.t0 + interval '500 ms', last_attempt.started_at, last.at, last.at,
           'bench-node:' || (1000 + l.i %% 8), NULL, NULL,
           CASE WHEN last.status = 'cancelled' THEN last.at END,
           CASE WHEN last.status = 'completed' THEN jsonb_build_object('scored', l.i %% 500) END,
           CASE WHEN l.scenario IN (1, 2, 3) THEN jsonb_build_object(
               'type', err.type, 'message', err.message, 'error_class', err.error_class,
               'fingerprint', left(md5(err.type || err.message), 16)) END,
           CASE WHEN l.scenario IN (1, 2, 3) THEN err.error_class ELSE '' END
    FROM bench_layer l
    JOIN bench_errors err ON err.kind = l.kind
    JOIN LATERAL (
        SELECT t.status, t.progress,
               l.t0 + make_interval(secs => (t.at_ms + t.at_frac * l.e) / 1000.0) AS at,
               t.event_type || ' ' || t.status AS message
        FROM bench_events t WHERE t.scenario = l.scenario ORDER BY t.seq DESC LIMIT 1
    ) last ON true
    JOIN LATERAL (
        SELECT count(*)::int AS attempts FROM bench_attempts t WHERE t.scenario = l.scenario
    ) a ON true
    JOIN LATERAL (
        SELECT l.t0 + make_interval(secs => (t.start_ms + t.start_frac * l.e) / 1000.0) AS started_at
        FROM bench_attempts t WHERE t.scenario = l.scenario ORDER BY t.attempt DESC LIMIT 1
    ) last_attempt ON true
"""

ATTEMPTS_SQL = """
    INSERT INTO job_retry_history (id, job_id, attempt_number, started_at, completed_at, status, error_message,
                                   retry_delay_seconds, created_at)
    SELECT md5(%(tag)s || ':a:' || l.i || ':' || t.attempt)::uuid, l.id, t.attempt,
           l.t0 + make_interval(secs => (t.start_ms + t.start_frac * l.e) / 1000.0),
           l.t0 + make_interval(secs => (t.end_ms + t.end_frac * l.e) / 1000.0),
           t.status,
           CASE WHEN t.failed THEN err.type || ': ' || err.message
                WHEN t.status = 'cancelled' THEN 'cancelled by an operator' END,
           t.delay_s,
           l.t0 + make_interval(secs => (t.start_ms + t.start_frac * l.e) / 1000.0)
    FROM bench_layer l
    JOIN bench_attempts t ON t.scenario = l.scenario
    JOIN bench_errors err ON err.kind = l.kind
"""

EVENTS_SQL = """
    INSERT INTO job_execution_logs (id, job_id, event_type, timestamp, status, progress, message, details,
                                    error_details, execution_time_ms, memory_usage_mb, created_at)
    SELECT md5(%(tag)s || ':e:' || l.i || ':' || t.seq)::uuid, l.id, t.event_type, at.ts, t.status, t.progress,
           CASE t.event_type
               WHEN 'queued' THEN 'submitted by bench'
               WHEN 'started' THEN 'attempt ' || t.attempt || ' started on bench-node:' || (1000 + l.i %% 8)
               WHEN 'progress' THEN 'step ' || (t.progress / 10) || '/10'
               WHEN 'error' THEN err.type || ': ' || err.message
               WHEN 'retry' THEN 'attempt ' || t.attempt || ' queued after ' || (t.attempt * 2 - 2) || '.0s'
               WHEN 'completed' THEN 'attempt ' || t.attempt || ' completed'
               ELSE 'attempt ' || t.attempt || ' stopped: cancelled by an operator'
           END,
           CASE t.event_type
               WHEN 'queued' THEN jsonb_build_object('job_type', l.job_type, 'max_attempts', 3, 'attempt', 1)
               WHEN 'started' THEN jsonb_build_object('job_type', l.job_type, 'attempt', t.attempt,
                   'worker', 'bench-node:' || (1000 + l.i %% 8),
                   'parameters', jsonb_build_object('batch', l.i %% 1000, 'source', 'bench'))
               WHEN 'progress' THEN NULL
               WHEN 'error' THEN jsonb_build_object('status', t.status, 'attempt', t.attempt, 'max_attempts', 3,
                   'error_class', err.error_class, 'retryable', t.retryable)
               WHEN 'retry' THEN jsonb_build_object('attempt', t.attempt, 'planned_delay_s', t.attempt * 2 - 2)
               WHEN 'completed' THEN jsonb_build_object('attempt', t.attempt,
                   'result', jsonb_build_object('scored', l.i %% 500))
               ELSE jsonb_build_object('attempt', t.attempt)
           END,
           CASE WHEN t.is_error THEN jsonb_build_object(
               'type', err.type, 'message', err.message, 'error_class', err.error_class, 'retryable', t.retryable,
               'traceback', 'Traceback (most recent call last):' || chr(10)
                   || repeat('  File "/app/jobs/executors.py", line 87, in ' || replace(l.job_type, '.', '_')
                             || chr(10) || '    response.raise_for_status()' || chr(10), {tb_lines})
                   || err.type || ': ' || err.message,
               'fingerprint', left(md5(err.type || err.message), 16)) END,
           CASE WHEN t.exec_frac IS NOT NULL THEN round(t.exec_frac * l.e)::int END,
           CASE WHEN t.event_type IN ('queued', 'retry') THEN NULL ELSE 60 + (l.i %% 40)::int END,
           at.ts
    FROM bench_layer l
    JOIN bench_events t ON t.scenario = l.scenario
    JOIN bench_errors err ON err.kind = l.kind
    CROSS JOIN LATERAL (SELECT l.t0 + make_interval(secs => (t.at_ms + t.at_frac * l.e) / 1000.0) AS ts) at
"""


def generate_layer(cur, *, tag: str, jobs: int, until: datetime, seed: int = SEED) -> Layer:
    """Add `jobs` finished jobs (and their attempts and events) spread over the SPAN_DAYS before `until`.

    `cur` is a cursor (psycopg's, or Django's on Postgres); the caller commits.
    """
    params = {
        "tag": tag,
        "n": jobs,
        "seed": seed,
        "until": until,
        "span_s": SPAN_DAYS * 86400 - 600,  # the last job ends before `until`
        "job_types": list(JOB_TYPES),
    }
    layer_sql = LAYER_SQL.format(
        h_type=_h("i", 1),
        n_types=len(JOB_TYPES),
        h_e=_h("i", 2),
        h_kind=_h("i", 3),
        h_draw=_h("i", 4),
        scenario=_scenario_sql(),
        retryable=RETRYABLE_KINDS,
        n_errors=len(ERRORS),
    )
    _setup(cur)
    cur.execute("DROP TABLE IF EXISTS bench_layer")
    cur.execute(layer_sql, params)
    cur.execute(JOBS_SQL, params)
    cur.execute(ATTEMPTS_SQL, params)
    attempts = cur.rowcount
    cur.execute(EVENTS_SQL.format(tb_lines=TRACEBACK_LINES), params)
    events = cur.rowcount
    cur.execute("DROP TABLE bench_layer")
    return Layer(jobs=jobs, events=events, attempts=attempts)


# --- active jobs (the lists' figure) ------------------------------------------------------

ACTIVE_SQL = """
    WITH a AS (
        SELECT i, md5(%(tag)s || ':' || i)::uuid AS id,
               CASE WHEN {h_status} %% 10 < 6 THEN 'running' WHEN {h_status} %% 10 < 9 THEN 'queued'
                    ELSE 'retrying' END AS status,
               (%(job_types)s::text[])[1 + {h_type} %% {n_types}] AS job_type,
               %(until)s::timestamptz - make_interval(secs => 3600 * (1 - (i - 0.5) / %(n)s)) AS created
        FROM generate_series(%(first)s::bigint, %(last)s::bigint) i
    ), j AS (
        INSERT INTO jobs (id, job_type, parameters, status, progress, message, attempts, max_attempts, submitted_by,
                          created_at, updated_at, started_at, attempt_started_at, finished_at, heartbeat_at, worker,
                          next_attempt_at, retry_delay, cancel_requested_at, result, last_error, error_class)
        SELECT id, job_type, jsonb_build_object('batch', i %% 1000, 'source', 'bench'), status,
               CASE status WHEN 'running' THEN (i %% 10) * 10 ELSE 0 END,
               CASE status WHEN 'running' THEN 'step ' || (i %% 10) || '/10' WHEN 'queued' THEN 'queued'
                    ELSE 'httpx.ConnectTimeout: connection timed out' END,
               CASE status WHEN 'queued' THEN 0 ELSE 1 END, 3, 'bench',
               created, created + interval '2 s' + make_interval(secs => (i %% 600)),
               CASE status WHEN 'queued' THEN NULL ELSE created + interval '1 s' END,
               CASE status WHEN 'queued' THEN NULL ELSE created + interval '1 s' END,
               NULL,
               CASE status WHEN 'running' THEN %(until)s::timestamptz END,
               CASE status WHEN 'running' THEN 'bench-node:' || (1000 + i %% 8) ELSE '' END,
               CASE status WHEN 'retrying' THEN %(until)s::timestamptz + interval '1 hour' END,
               CASE status WHEN 'retrying' THEN 3600 END,
               NULL, NULL,
               CASE status WHEN 'retrying' THEN jsonb_build_object('type', 'httpx.ConnectTimeout',
                   'message', 'connection timed out', 'error_class', 'transient') END,
               CASE status WHEN 'retrying' THEN 'transient' ELSE '' END
        FROM a
        RETURNING id, status, created_at
    )
    INSERT INTO job_execution_logs (id, job_id, event_type, timestamp, status, progress, message, details,
                                    error_details, execution_time_ms, memory_usage_mb, created_at)
    SELECT md5(j.id::text || ':' || e.seq)::uuid, j.id, e.event_type, j.created_at + make_interval(secs => e.seq),
           e.status, 0, e.event_type, NULL, NULL, NULL, NULL, j.created_at + make_interval(secs => e.seq)
    FROM j
    JOIN LATERAL (VALUES (1, 'queued', 'queued'), (2, 'started', 'running'), (3, 'progress', 'running')) e(seq,
        event_type, status) ON e.seq = 1 OR j.status <> 'queued'
"""


def add_active_jobs(cur, *, first: int, last: int, total: int, until: datetime, seed: int = SEED) -> int:
    """Active jobs number `first` to `last` of `total` (queued, running, retrying), created in the
    hour before `until`, with their queued/started/progress events. Returns the events added;
    the caller commits."""
    sql = ACTIVE_SQL.format(h_status=_h("i", 5), h_type=_h("i", 6), n_types=len(JOB_TYPES))
    params = {
        "tag": "active",
        "seed": seed,
        "first": first,
        "last": last,
        "n": total,
        "until": until,
        "job_types": list(JOB_TYPES),
    }
    cur.execute("SET synchronous_commit = off")
    cur.execute(sql, params)
    return cur.rowcount


def vacuum_analyze(conn: psycopg.Connection) -> None:
    """What autovacuum would have done to a history built over months: statistics and the
    visibility map (index-only scans), so plans are the ones production gets."""
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        for table in ("jobs", "job_retry_history", "job_execution_logs"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        conn.autocommit = autocommit


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    counts = {}
    for table in ("jobs", "job_retry_history", "job_execution_logs"):
        counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return counts
