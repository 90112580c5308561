"""Performance numbers computed in the database, never by looping over log rows in Python."""

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import BigIntegerField, Count, F, Func, Max, Min, Q, Sum, Window
from django.db.models.fields.json import KT
from django.db.models.functions import RowNumber

from jobs import clock
from jobs.errors import ErrorType
from jobs.models import Job, JobRetryHistory, JobStatus
from monitoring.models import TERMINAL_EVENT_TYPES, EventType, JobExecutionLog

PERCENTILES = (0.5, 0.95, 0.99)
# All three from one sort of the group's values (a percentile_cont each would sort it three times).
_PERCENTILES_SQL = (
    f"percentile_cont(ARRAY[{', '.join(map(str, PERCENTILES))}]) WITHIN GROUP (ORDER BY execution_time_ms)"
)

TIMEFRAMES: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
# Chart buckets per timeframe: 30 to 120 points whatever the span.
BUCKET_SECONDS: dict[str, int] = {"15m": 30, "1h": 60, "6h": 300, "24h": 900, "7d": 7200, "30d": 21600}
TOP_ERRORS = 10
TOP_EXCEPTION_TYPES = 20
MAX_MESSAGE_CHARS = 500
# Ratios (success_rate; the worker hosts' failure shares) are given to 4 decimals: 0.6667, not 0.6666666666666666.
RATIO_DIGITS = 4


class UnknownTimeframe(ValueError):
    def __init__(self, timeframe):
        self.timeframe = timeframe
        super().__init__(f"unknown timeframe {timeframe!r}: use one of {', '.join(TIMEFRAMES)}")


def _empty_stats() -> dict:
    return {"count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None}


def execution_time_stats(
    *,
    since: datetime,
    until: datetime | None = None,
    job_type: str | None = None,
    by_job_type: bool = False,
    event_types: tuple[str, ...] = (EventType.COMPLETED,),
) -> dict:
    """count, mean and p50/p95/p99 of attempts' execution_time_ms in [since, until).

    Returns one stats dict, or {job_type: stats} with by_job_type. Percentiles are
    percentile_cont's (linear interpolation); on SQLite the same values come from window
    functions. Served by the partial index on outcome events' timestamps.
    """
    until = until or clock.now()
    source, params = _timed_attempts(since, until, job_type=job_type, join_jobs=by_job_type, event_types=event_types)
    stats = _time_stats_by("j.job_type" if by_job_type else "''", source, params)
    if by_job_type:
        return stats
    return stats.get("", _empty_stats())


def _timed_attempts(since, until, *, job_type=None, join_jobs=False, event_types=(EventType.COMPLETED,)):
    """FROM … WHERE … over the timed outcome events of [since, until), and its parameters."""
    join = "JOIN jobs j ON j.id = l.job_id" if (join_jobs or job_type) else ""
    where = [
        f"l.event_type IN ({', '.join(['%s'] * len(event_types))})",
        "l.timestamp >= %s",
        "l.timestamp < %s",
        "l.execution_time_ms IS NOT NULL",
    ]
    params = [*event_types, connection.ops.adapt_datetimefield_value(since)]
    params.append(connection.ops.adapt_datetimefield_value(until))
    if job_type:
        where.append("j.job_type = %s")
        params.append(job_type)
    return f"FROM job_execution_logs l {join} WHERE {' AND '.join(where)}", params


def _time_stats_by(group: str, source: str, params: list) -> dict:
    """{group value: stats} of l.execution_time_ms, `group` being an SQL expression."""
    if connection.vendor == "postgresql":
        sql = f"SELECT {group}, count(*), avg(l.execution_time_ms), {_PERCENTILES_SQL} {source} GROUP BY 1"
        return {group_value: _stats(count, mean, p) for group_value, count, mean, p in _fetch(sql, params)}
    return _sqlite_stats(group, source, params)


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _stats(count, mean, percentiles) -> dict:
    values = [None if v is None else round(float(v), 2) for v in percentiles]
    return {
        "count": int(count),
        "mean_ms": None if mean is None else round(float(mean), 2),
        **{f"p{round(p * 100)}_ms": v for p, v in zip(PERCENTILES, values)},
    }


def _sqlite_stats(group: str, source: str, params: list) -> dict:
    """percentile_cont without the function: rank the values per group, then interpolate
    between the two ranks around each fraction (one row per group comes back)."""
    bounds = []
    for p in PERCENTILES:
        position = f"CAST({p} * (n - 1) AS INTEGER)"
        bounds.append(f"MAX(CASE WHEN i = {position} THEN x END)")
        bounds.append(f"MAX(CASE WHEN i = {position} + 1 THEN x END)")
    sql = f"""
        WITH ranked AS (
            SELECT {group} AS g, l.execution_time_ms AS x,
                   ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY l.execution_time_ms) - 1 AS i,
                   COUNT(*) OVER (PARTITION BY {group}) AS n
            {source}
        )
        SELECT g, MAX(n), AVG(x), {", ".join(bounds)} FROM ranked GROUP BY g
    """
    stats = {}
    for group_value, count, mean, *pairs in _fetch(sql, params):
        values = []
        for p, low, high in zip(PERCENTILES, pairs[0::2], pairs[1::2]):
            position = p * (count - 1)
            fraction = position - math.floor(position)
            values.append(low if high is None or fraction == 0 else low + fraction * (high - low))
        stats[group_value] = _stats(count, mean, values)
    return stats


# --- time buckets -------------------------------------------------------------------------


def bucket_sql(vendor: str, column_sql: str, size: int) -> str:
    """floor(epoch seconds / size): the index of the `size`-second bucket a time falls in.

    Buckets are aligned on the epoch (a 1-minute bucket starts at :00), so the same
    bucket covers the same minutes in every request.
    """
    size = int(size)
    if vendor == "postgresql":
        return f"FLOOR(EXTRACT(EPOCH FROM {column_sql}) / {size})::bigint"
    # Django keeps UTC times as text on SQLite; strftime('%s') reads them as whole seconds.
    return f"(CAST(strftime('%%s', {column_sql}) AS INTEGER) / {size})"


class EpochBucket(Func):
    output_field = BigIntegerField()

    def __init__(self, expression, size: int):
        super().__init__(expression)
        self.size = int(size)

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return bucket_sql(connection.vendor, sql, self.size), params


def _bucket_start(index: int, size: int) -> datetime:
    return datetime.fromtimestamp(index * size, UTC)


# --- performance metrics over a timeframe -------------------------------------------------

COUNT_KEYS = ("started", "retried", "succeeded", "failed", "failed_attempts", "retried_failures", "cancelled")
SERIES_COUNT_KEYS = ("started", "succeeded", "failed", "failed_attempts", "retried_failures", "cancelled")
TIME_KEYS = ("mean_ms", "p50_ms", "p95_ms", "p99_ms")


def performance_metrics(
    timeframe: str,
    *,
    job_type: str | None = None,
    now: datetime | None = None,
    execution_times: bool = True,
    errors: bool = True,
    by_job_type: bool = True,
    error: str | None = None,
) -> dict:
    """What the jobs did in the last `timeframe` (a key of TIMEFRAMES), per job type and overall.

    Nine queries at most, whatever the amount of data; each reads only the rows inside the
    window (partial index on outcome events' timestamps, job_retry_history.started_at).
    Raises UnknownTimeframe. With `job_type`, everything is about that job type only. With `error`
    (a fingerprint, as top_errors gives it), everything is about the attempts that failed with that
    error only: succeeded, cancelled, started and retried are 0 (an attempt's start does not know how
    it will end), the execution times and the success rate None (one error's failures would read
    0 %, no figure of the jobs), and the error analysis is of that one group.
    A page asks only for what it shows (over 30 days each part costs hundreds of ms,
    docs/benchmark.md): without `execution_times` the mean_ms/pNN_ms keys are left out
    (overall, per job type, per bucket), without `errors` the errors_by_class, errors_by_type,
    error_groups and top_errors keys, without `by_job_type` the by_job_type key.

    Counts are of attempts (each attempt ends with exactly one outcome event):
        started          attempts started (job_retry_history rows)
        retried          of those, attempts after the first (automatic or manual retries)
        succeeded        attempts completed, i.e. jobs completed
        failed           attempts that failed with no retry left, i.e. jobs failed for good
        failed_attempts  all failed attempts, the retried ones included
        retried_failures of those, the attempts whose job was to be retried (error event "retrying"):
                         not the failed for good, nor those whose retry a cancel stopped ("cancelled")
        cancelled        jobs cancelled (running, or before they started)

    Returns:
        {
          "timeframe": "1h", "job_type": str | None, "error": str | None,
          "since": datetime, "until": datetime,      # the window [since, until)
          "bucket_seconds": int,
          "overall": Stats,
          "by_job_type": [{"job_type": str, **Stats}, ...],        # sorted by job_type
          "errors_by_class": [{"error_class": str, "count": int}, ...],   # the four classes, always
          "errors_by_type": [{"exception_type": str, "count": int}, ...], # top 20, most first
          "error_groups": int,                                      # fingerprints in the window
          "top_errors": [{                                          # top 10 groups, most first
              "fingerprint": str, "count": int,
              "first_seen": datetime, "last_seen": datetime,        # inside the window
              "job_types": [str, ...], "example_job_id": UUID,      # the latest occurrence's job
              "exception_type": str, "message": str (<= 500 chars), "error_class": str,
          }, ...],
          "series": [{                                              # every bucket, oldest first
              "bucket_start": datetime, "started": int, "succeeded": int, "failed": int,
              "failed_attempts": int, "retried_failures": int, "cancelled": int,
              "p50_ms": float | None, "p95_ms": float | None,
          }, ...],
        }
        Stats = {
          "started", "retried", "succeeded", "failed", "failed_attempts", "retried_failures", "cancelled": int,
          "success_rate": float | None,    # succeeded / (succeeded + failed), 0..1; None if neither
          "throughput_per_minute": float,  # jobs finished (succeeded + failed + cancelled) per minute
          "mean_ms", "p50_ms", "p95_ms", "p99_ms": float | None,   # execution time of succeeded attempts
        }
    The first and last buckets may be partial: buckets are aligned on the epoch.
    """
    if timeframe not in TIMEFRAMES:
        raise UnknownTimeframe(timeframe)
    until = now or clock.now()
    since = until - TIMEFRAMES[timeframe]
    size = BUCKET_SECONDS[timeframe]

    if connection.vendor == "postgresql":
        per_type, per_bucket, times_by_type, times_overall, times_by_bucket = _window_in_one_pass(
            since, until, size, job_type, execution_times=execution_times, by_job_type=by_job_type, error=error
        )
    else:
        # With `error`, no attempt is counted as started: no query for them.
        attempt_counts = [] if error else _attempt_counts(since, until, size, job_type)
        per_type, per_bucket = _counts_by_type_and_bucket(
            _outcome_counts(since, until, size, job_type, error), attempt_counts
        )
        times_by_type, times_overall, times_by_bucket = {}, _empty_stats(), {}
        if execution_times and not error:  # (times are of completed attempts: none failed with it)
            times_by_type = execution_time_stats(since=since, until=until, job_type=job_type, by_job_type=True)
            times_overall = execution_time_stats(since=since, until=until, job_type=job_type)
            source, params = _timed_attempts(since, until, job_type=job_type)
            times_by_bucket = _time_stats_by(bucket_sql(connection.vendor, "l.timestamp", size), source, params)

    minutes = TIMEFRAMES[timeframe].total_seconds() / 60
    time_keys = TIME_KEYS if execution_times else ()
    overall_counts = {key: sum(counts[key] for counts in per_type.values()) for key in COUNT_KEYS}
    rated = not error
    per_job_type = [
        {
            "job_type": name,
            **_summary(per_type[name], times_by_type.get(name, _empty_stats()), minutes, time_keys, rated=rated),
        }
        for name in sorted(set(per_type) | set(times_by_type))
    ]
    first, last = math.floor(since.timestamp() / size), math.ceil(until.timestamp() / size) - 1
    series = []
    for index in range(first, last + 1):
        counts, times = per_bucket.get(index, dict.fromkeys(COUNT_KEYS, 0)), times_by_bucket.get(index, {})
        series.append(
            {
                "bucket_start": _bucket_start(index, size),
                **{key: counts[key] for key in SERIES_COUNT_KEYS},
                **{key: times.get(key) for key in ("p50_ms", "p95_ms") if key in time_keys},
            }
        )
    return {
        "timeframe": timeframe,
        "job_type": job_type,
        "error": error,
        "since": since,
        "until": until,
        "bucket_seconds": size,
        "overall": _summary(overall_counts, times_overall, minutes, time_keys, rated=rated),
        **({"by_job_type": per_job_type} if by_job_type else {}),
        **(_error_breakdown(since, until, job_type, error) if errors else {}),
        "series": series,
    }


def _summary(
    counts: dict, times: dict, minutes: float, time_keys: tuple[str, ...] = TIME_KEYS, *, rated: bool = True
) -> dict:
    ended = counts["succeeded"] + counts["failed"]
    finished = ended + counts["cancelled"]
    return {
        **counts,
        "success_rate": round(counts["succeeded"] / ended, RATIO_DIGITS) if ended and rated else None,
        "throughput_per_minute": round(finished / minutes, 3),
        **{key: times.get(key) for key in time_keys},
    }


def _outcomes(since, until, job_type, error=None):
    outcomes = JobExecutionLog.objects.filter(
        event_type__in=TERMINAL_EVENT_TYPES, timestamp__gte=since, timestamp__lt=until
    )
    if error:
        outcomes = outcomes.filter(event_type=EventType.ERROR, error_details__fingerprint=error)
    return outcomes.filter(job__job_type=job_type) if job_type else outcomes


def _outcome_aggregates() -> dict:
    # Counting job_id (never null), not id: every column read is in the outcome index, so
    # Postgres never visits the table (index-only scan).
    return {
        "succeeded": Count("job", filter=Q(event_type=EventType.COMPLETED)),
        "failed": Count("job", filter=Q(event_type=EventType.ERROR, status=JobStatus.FAILED)),
        "failed_attempts": Count("job", filter=Q(event_type=EventType.ERROR)),
        "retried_failures": Count("job", filter=Q(event_type=EventType.ERROR, status=JobStatus.RETRYING)),
        "cancelled": Count("job", filter=Q(event_type=EventType.CANCELLED)),
    }


def _outcome_counts(since, until, size: int, job_type, error=None) -> list[dict]:
    return list(
        _outcomes(since, until, job_type, error)
        .values(job_type=F("job__job_type"), bucket=EpochBucket("timestamp", size))
        .annotate(**_outcome_aggregates())
        .order_by()
    )


OUTCOME_KEYS = ("succeeded", "failed", "failed_attempts", "retried_failures", "cancelled")
ATTEMPT_KEYS = ("started", "retried")


def _zero_counts() -> dict:
    return dict.fromkeys(COUNT_KEYS, 0)


def _counts_by_type_and_bucket(outcome_counts: list[dict], attempt_counts: list[dict]) -> tuple[dict, dict]:
    """({job_type: counts}, {bucket: counts}) from counts per job type x bucket."""
    per_type: dict[str, dict] = defaultdict(_zero_counts)
    per_bucket: dict[int, dict] = defaultdict(_zero_counts)
    # Loops run over groups (job type x bucket), never over log rows.
    for rows, keys in ((outcome_counts, OUTCOME_KEYS), (attempt_counts, ATTEMPT_KEYS)):
        for row in rows:
            for key in keys:
                per_type[row["job_type"]][key] += row[key]
                per_bucket[row["bucket"]][key] += row[key]
    return per_type, per_bucket


# GROUPING(job_type, bucket) of the rows _window_in_one_pass reads (3: overall).
_PER_TYPE, _PER_BUCKET = 1, 2


def _window_in_one_pass(
    since, until, size: int, job_type, *, execution_times: bool, by_job_type: bool, error: str | None = None
) -> tuple[dict, ...]:
    """Postgres: the counts and execution times of the window, in one statement that reads its
    outcomes once; every figure is grouped per job type and per bucket in the database.

    Outcomes and attempts are joined to `jobs` only when the figures per job type or a job type
    filter need it (the groups "per job type" are otherwise one, named ''): over 30 days that
    join is most of the counts' cost. Buckets come from date_bin (integer arithmetic;
    EXTRACT(EPOCH) is numeric, slow over 230,000 rows) and become indexes once grouped; the outcomes
    are materialized only when the execution times read them a second time. Percentiles are
    computed for the three groupings shown, not for every job type x bucket (docs/benchmark.md).
    One stream of outcomes and attempts joined once was tried: the planner then runs small
    windows' lookups in parallel workers, slower to start than the lookups take.
    With `error`, the outcomes are the failed attempts with that fingerprint and no attempt is
    counted (performance_metrics).
    Returns (counts per job type, counts per bucket, times per job type, times overall, times
    per bucket); the times are empty without `execution_times`.
    """
    joined = by_job_type or job_type
    type_filter, params = "", {"since": since, "until": until}
    if job_type:
        type_filter = "AND j.job_type = %(job_type)s"
        params["job_type"] = job_type
    outcome_filter, attempt_filter = "l.event_type IN ('completed', 'error', 'cancelled')", "true"
    if error:
        outcome_filter, attempt_filter = (
            "l.event_type = 'error' AND l.error_details->>'fingerprint' = %(error)s",
            "false",
        )
        params["error"] = error

    def rows(alias: str, time: str, columns: str, table: str, where: str) -> str:
        join = f"JOIN jobs j ON j.id = {alias}.job_id {type_filter}" if joined else ""
        return f"""
            SELECT {"j.job_type" if joined else "''::text"} AS job_type,
                   date_bin('{size} seconds', {time}, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket, {columns}
            FROM {table} {alias} {join}
            WHERE {where} AND {time} >= %(since)s AND {time} < %(until)s
        """

    bucket_index = f"EXTRACT(EPOCH FROM bucket)::bigint / {size}"
    times = f"""
        UNION ALL
        SELECT 'times', GROUPING(job_type, bucket), job_type, {bucket_index}, count(*), NULL, NULL, NULL, NULL,
               avg(execution_time_ms), {_PERCENTILES_SQL}
        FROM outcomes WHERE event_type = 'completed' AND execution_time_ms IS NOT NULL
        GROUP BY GROUPING SETS ((job_type), (bucket), ())
    """
    outcomes = rows(
        "l",
        "l.timestamp",
        "l.event_type, l.status, l.execution_time_ms",
        "job_execution_logs",
        outcome_filter,
    )
    attempts = rows("r", "r.started_at", "r.attempt_number", "job_retry_history", attempt_filter)
    sql = f"""
        WITH outcomes AS {"MATERIALIZED" if execution_times else ""} ({outcomes}), attempts AS ({attempts})
        SELECT 'outcomes', GROUPING(job_type, bucket), job_type, {bucket_index},
               count(*) FILTER (WHERE event_type = 'completed'),
               count(*) FILTER (WHERE event_type = 'error' AND status = 'failed'),
               count(*) FILTER (WHERE event_type = 'error'),
               count(*) FILTER (WHERE event_type = 'error' AND status = 'retrying'),
               count(*) FILTER (WHERE event_type = 'cancelled'),
               NULL::numeric, NULL::float8[]
        FROM outcomes GROUP BY GROUPING SETS ((job_type), (bucket))
        {times if execution_times else ""}
        UNION ALL
        SELECT 'attempts', GROUPING(job_type, bucket), job_type, {bucket_index},
               count(*), count(*) FILTER (WHERE attempt_number > 1), NULL, NULL, NULL, NULL, NULL
        FROM attempts GROUP BY GROUPING SETS ((job_type), (bucket))
    """
    per_type: dict[str, dict] = defaultdict(_zero_counts)
    per_bucket: dict[int, dict] = defaultdict(_zero_counts)
    times_by_type, times_overall, times_by_bucket = {}, _empty_stats(), {}
    for part, grouping, name, index, *counts, mean, percentiles in _fetch(sql, params):
        if part == "times":
            if not counts[0]:  # (the overall row comes back, counting 0, when nothing completed)
                continue
            stats = _stats(counts[0], mean, percentiles)
            if grouping == _PER_TYPE:
                times_by_type[name] = stats
            elif grouping == _PER_BUCKET:
                times_by_bucket[index] = stats
            else:
                times_overall = stats
            continue
        group = per_type[name] if grouping == _PER_TYPE else per_bucket[index]
        group.update(zip(OUTCOME_KEYS if part == "outcomes" else ATTEMPT_KEYS, counts))
    return per_type, per_bucket, times_by_type, times_overall, times_by_bucket


def outcome_summary(timeframe: str, *, now: datetime | None = None) -> dict:
    """The outcomes of the last `timeframe`, counted as performance_metrics counts them, in one
    query and without execution times or series: for a page that polls (the overview).

    {"since", "until", "succeeded", "failed", "failed_attempts", "cancelled",
     "success_rate": float | None, "throughput_per_minute": float}
    """
    if timeframe not in TIMEFRAMES:
        raise UnknownTimeframe(timeframe)
    until = now or clock.now()
    since = until - TIMEFRAMES[timeframe]
    counts = _outcomes(since, until, None).aggregate(**_outcome_aggregates())
    summary = _summary({**counts, "started": 0, "retried": 0}, {}, TIMEFRAMES[timeframe].total_seconds() / 60)
    keys = ("succeeded", "failed", "failed_attempts", "cancelled", "success_rate", "throughput_per_minute")
    return {"since": since, "until": until, **{key: summary[key] for key in keys}}


def _attempt_counts(since, until, size: int, job_type) -> list[dict]:
    attempts = JobRetryHistory.objects.filter(started_at__gte=since, started_at__lt=until)
    if job_type:
        attempts = attempts.filter(job__job_type=job_type)
    return list(
        attempts.values(job_type=F("job__job_type"), bucket=EpochBucket("started_at", size))
        .annotate(started=Count("job"), retried=Count("job", filter=Q(attempt_number__gt=1)))
        .order_by()
    )


def _error_breakdown(since, until, job_type, error=None) -> dict:
    """errors_by_class, errors_by_type and top_errors (one statement on Postgres, two to four
    queries elsewhere); with `error`, of that fingerprint's failures only."""
    if connection.vendor == "postgresql":
        kinds, top, groups = _errors_in_one_pass(since, until, job_type, error)
    else:
        kinds = _errors_by_kind(since, until, job_type, error)
        top, groups = _top_errors(since, until, job_type, error)
    by_class = dict.fromkeys((str(error_type) for error_type in ErrorType), 0)
    by_type: dict[str, int] = defaultdict(int)
    for error_class, exception_type, count in kinds:
        # A failure recorded without one of the design's four classes counts as unknown.
        error_class = error_class if error_class in by_class else "unknown"
        by_class[error_class] = by_class.get(error_class, 0) + count
        by_type[exception_type or "unknown"] += count
    return {
        "errors_by_class": [{"error_class": name, "count": count} for name, count in by_class.items()],
        "errors_by_type": [
            {"exception_type": name, "count": count}
            for name, count in sorted(by_type.items(), key=lambda item: (-item[1], item[0]))[:TOP_EXCEPTION_TYPES]
        ],
        "top_errors": top,
        "error_groups": groups,
    }


def _errors_by_kind(since, until, job_type, error=None) -> list[tuple]:
    """[(error_class, exception_type, count)] of the failed attempts in the window."""
    errors = _outcomes(since, until, job_type, error).filter(event_type=EventType.ERROR)
    return list(
        errors.values_list(KT("error_details__error_class"), KT("error_details__type"))
        .annotate(count=Count("id"))
        .order_by()
    )


def _top_errors(since, until, job_type, error=None) -> tuple[list[dict], int]:
    """The TOP_ERRORS most frequent fingerprints, most first, with their latest occurrence; and
    how many fingerprints there are in all."""
    errors = _outcomes(since, until, job_type, error).filter(event_type=EventType.ERROR)
    fingerprinted = errors.annotate(fingerprint=KT("error_details__fingerprint")).filter(fingerprint__isnull=False)
    top = list(
        fingerprinted.values("fingerprint")
        .annotate(
            count=Count("id"),
            first_seen=Min("timestamp"),
            last_seen=Max("timestamp"),
            groups=Window(Count("*")),  # over the grouped rows, before the LIMIT: how many groups
        )
        .order_by("-count", "-last_seen", "fingerprint")[:TOP_ERRORS]
    )
    groups = top[0]["groups"] if top else 0
    for group in top:
        del group["groups"]
    if top:
        fingerprints = [group["fingerprint"] for group in top]
        latest = (
            fingerprinted.filter(error_details__fingerprint__in=fingerprints)
            .annotate(
                rank=Window(RowNumber(), partition_by=[F("fingerprint")], order_by=[F("timestamp").desc(), F("id")])
            )
            .filter(rank=1)
            .values(
                "fingerprint",
                "job_id",
                exception_type=KT("error_details__type"),
                error_message=KT("error_details__message"),
                error_class=KT("error_details__error_class"),
            )
        )
        examples = {row["fingerprint"]: row for row in latest}
        job_types = defaultdict(list)
        for fingerprint, name in (
            fingerprinted.filter(error_details__fingerprint__in=fingerprints)
            .values_list("fingerprint", "job__job_type")
            .distinct()
            .order_by("fingerprint", "job__job_type")
        ):
            job_types[fingerprint].append(name)
        for group in top:
            example = examples.get(group["fingerprint"], {})
            group.update(
                job_types=job_types[group["fingerprint"]],
                example_job_id=example.get("job_id"),
                exception_type=example.get("exception_type"),
                message=(example.get("error_message") or "")[:MAX_MESSAGE_CHARS],
                error_class=example.get("error_class"),
            )
    return top, groups


def _errors_in_one_pass(since, until, job_type, error=None) -> tuple[list[tuple], list[dict], int]:
    """Postgres: what _errors_by_kind and _top_errors give, in one statement reading the window's
    errors once (four queries before, each compiled by the ORM: docs/benchmark.md)."""
    join, where, params = "", "", [since, until]
    if error:
        where += " AND l.error_details->>'fingerprint' = %s"
        params.append(error)
    if job_type:
        join, where = "JOIN jobs j ON j.id = l.job_id", where + " AND j.job_type = %s"
        params.append(job_type)
    sql = f"""
        WITH errors AS MATERIALIZED (
            SELECT l.id, l.job_id, l.timestamp, l.error_details->>'error_class' AS error_class,
                   l.error_details->>'type' AS exception_type, l.error_details->>'message' AS message,
                   l.error_details->>'fingerprint' AS fingerprint
            FROM job_execution_logs l {join}
            WHERE l.event_type = 'error' AND l.timestamp >= %s AND l.timestamp < %s {where}
        ), top AS (
            SELECT fingerprint, count(*) AS n, min(timestamp) AS first_seen, max(timestamp) AS last_seen
            FROM errors WHERE fingerprint IS NOT NULL
            GROUP BY fingerprint ORDER BY n DESC, last_seen DESC, fingerprint LIMIT {TOP_ERRORS}
        ), latest AS (
            SELECT DISTINCT ON (e.fingerprint) e.fingerprint, e.job_id, e.exception_type, e.message, e.error_class
            FROM errors e JOIN top USING (fingerprint)
            ORDER BY e.fingerprint, e.timestamp DESC, e.id
        ), groups AS (
            SELECT count(DISTINCT fingerprint) AS n FROM errors
        ), types AS (
            SELECT e.fingerprint, array_agg(DISTINCT j.job_type ORDER BY j.job_type) AS job_types
            FROM errors e JOIN top USING (fingerprint) JOIN jobs j ON j.id = e.job_id
            GROUP BY e.fingerprint
        )
        SELECT false, error_class, exception_type, count(*), NULL, NULL::timestamptz, NULL::timestamptz,
               NULL::text[], NULL::uuid, NULL, (SELECT n FROM groups)
        FROM errors GROUP BY error_class, exception_type
        UNION ALL
        SELECT true, latest.error_class, latest.exception_type, top.n, top.fingerprint, top.first_seen,
               top.last_seen, types.job_types, latest.job_id, left(latest.message, {MAX_MESSAGE_CHARS}), NULL
        FROM top JOIN latest USING (fingerprint) JOIN types USING (fingerprint)
        ORDER BY 1, 4 DESC, 7 DESC, 5
    """
    kinds, top, groups = [], [], 0
    for row in _fetch(sql, params):
        is_top, error_class, exception_type, count, fingerprint, first, last, job_types, job_id, message, n = row
        if not is_top:
            kinds.append((error_class, exception_type, count))
            groups = n
            continue
        top.append(
            {
                "fingerprint": fingerprint,
                "count": count,
                "first_seen": first,
                "last_seen": last,
                "job_types": job_types,
                "example_job_id": job_id,
                "exception_type": exception_type,
                "message": message or "",
                "error_class": error_class,
            }
        )
    return kinds, top, groups


# --- what /metrics exports (monitoring/prometheus.py) ---------------------------------------


def jobs_by_type_and_status() -> list[dict]:
    """[{job_type, status, count, retries}]: retries are attempts started beyond each job's first.

    A count over the whole jobs table (jobs are never pruned), one GROUP BY.
    """
    return list(
        Job.objects.values("job_type", "status")
        .annotate(count=Count("id"), retries=Sum(F("attempts") - 1, filter=Q(attempts__gt=1), default=0))
        .order_by("job_type", "status")
    )


def execution_time_histogram(*, since: datetime, until: datetime, bounds_ms: tuple[int, ...]) -> dict:
    """{job_type: {"count", "sum_ms", "buckets": [(bound_ms, attempts at or under it), ...]}} of the
    attempts completed in [since, until). One query, over the window's rows only."""
    per_bound = {f"le_{i}": Count("id", filter=Q(execution_time_ms__lte=bound)) for i, bound in enumerate(bounds_ms)}
    rows = (
        JobExecutionLog.objects.filter(
            event_type=EventType.COMPLETED,
            timestamp__gte=since,
            timestamp__lt=until,
            execution_time_ms__isnull=False,
        )
        .values(job_type=F("job__job_type"))
        .annotate(count=Count("id"), sum_ms=Sum("execution_time_ms"), **per_bound)
        .order_by("job_type")
    )
    return {
        row["job_type"]: {
            "count": row["count"],
            "sum_ms": row["sum_ms"] or 0,
            "buckets": [(bound, row[f"le_{i}"]) for i, bound in enumerate(bounds_ms)],
        }
        for row in rows
    }
