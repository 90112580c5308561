"""Performance numbers computed in the database, never by looping over log rows in Python."""

import math
from datetime import datetime

from django.db import connection
from django.utils import timezone

from monitoring.models import EventType

PERCENTILES = (0.5, 0.95, 0.99)


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
    until = until or timezone.now()
    group = "j.job_type" if by_job_type else "''"
    join = "JOIN jobs j ON j.id = l.job_id" if (by_job_type or job_type) else ""
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
    source = f"FROM job_execution_logs l {join} WHERE {' AND '.join(where)}"

    if connection.vendor == "postgresql":
        percentiles = ", ".join(
            f"percentile_cont({p}) WITHIN GROUP (ORDER BY l.execution_time_ms)" for p in PERCENTILES
        )
        sql = f"SELECT {group}, count(*), avg(l.execution_time_ms), {percentiles} {source} GROUP BY 1"
        rows = _fetch(sql, params)
        stats = {row[0]: _stats(row[1], row[2], row[3:]) for row in rows}
    else:
        stats = _sqlite_stats(group, source, params)
    if by_job_type:
        return stats
    return stats.get("", _empty_stats())


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
