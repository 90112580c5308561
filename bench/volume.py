"""A volume history kept for EXPLAIN and timing by hand (not a figure of `make bench`).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_vol python -m bench.volume

Creates (or replaces) the database, migrates it, then writes `--jobs` finished jobs over 30 days
with bench.data's generator (5.44 events each: 200,000 jobs are 1.09M log rows) and `--alerts`
alerts counting the jobs that failed an attempt, each failed job counted into about five alerts
(50,000 alerts count 150,000 job occurrences), 5 % of them still open. Same seed, same rows; the
times end at the moment of the run. The database is left for inspection: drop it when done
(`python -m bench.volume --drop`).
"""

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import data, db

ROOT = Path(__file__).resolve().parent.parent

# Alert k covers failed jobs start_k .. start_k + span_k - 1 (in time order), where start_k moves
# evenly through them: with 50,000 alerts and ~30,000 failed jobs each job is counted ~5 times,
# as a dense alert history with repeat rules and several rules per failure would.
ALERTS_SQL = """
    CREATE TEMP TABLE bench_failed AS
    SELECT row_number() OVER (ORDER BY j.created_at, j.id) AS r, j.id, j.job_type, j.finished_at
    FROM jobs j WHERE j.error_class <> '';
    CREATE TEMP TABLE bench_alerts AS
    SELECT k, md5('alert:' || k)::uuid AS id,
           1 + (k - 1) * (SELECT count(*) FROM bench_failed) / %(n)s AS first,
           1 + {h_span} %% 5 AS span, {h_open} %% 100 < 5 AS open
    FROM generate_series(1, %(n)s::bigint) k;
    INSERT INTO alert_history (id, alert_type, severity, title, message, job_id, triggered_at, resolved_at,
                               recipients, notification_sent, escalated, created_at)
    SELECT a.id, 'job_failure', 'error', 'Job failures: ' || f.job_type, 'failures of ' || f.job_type, f.id,
           f.finished_at, CASE WHEN NOT a.open THEN f.finished_at + interval '2 hours' END,
           NULL, true, false, f.finished_at
    FROM bench_alerts a JOIN bench_failed f ON f.r = a.first;
    INSERT INTO alerts_alertstate (alert_id, fingerprint, is_open, occurrences, last_seen_at, job_type,
                                   error_summary, resolved_by, resolution_reason, details, acknowledged_by)
    SELECT a.id, 'job_failure:' || a.k, a.open, a.span, f.finished_at, f.job_type, '', '', '', '{{}}', ''
    FROM bench_alerts a JOIN bench_failed f ON f.r = a.first;
    INSERT INTO alerts_alertoccurrence (alert_id, job_id, seen_at)
    SELECT a.id, f.id, f.finished_at
    FROM bench_alerts a JOIN bench_failed f ON f.r BETWEEN a.first AND a.first + a.span - 1;
    DROP TABLE bench_failed, bench_alerts;
"""


def generate_alerts(cur, *, alerts: int, seed: int = data.SEED) -> None:
    sql = ALERTS_SQL.format(h_span=data._h("k", 7), h_open=data._h("k", 8))
    for statement in filter(str.strip, sql.split(";")):
        cur.execute(statement, {"n": alerts, "seed": seed})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--alerts", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=data.SEED)
    parser.add_argument("--drop", action="store_true", help="drop the database and stop")
    args = parser.parse_args(argv)
    url = db.database_url()
    if args.drop:
        db.drop_database(url)
        return 0
    started = time.perf_counter()
    db.create_database(url)
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    with db.connect(url) as conn:
        conn.execute("DELETE FROM django_q_schedule")
        with conn.cursor() as cur:
            data.generate_layer(cur, tag="volume", jobs=args.jobs, until=datetime.now(UTC), seed=args.seed)
            generate_alerts(cur, alerts=args.alerts, seed=args.seed)
        conn.commit()
        data.vacuum_analyze(conn)
        conn.autocommit = True
        for table in ("alert_history", "alerts_alertstate", "alerts_alertoccurrence"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        counts = data.table_counts(conn)
        for table in ("alert_history", "alerts_alertoccurrence"):
            counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    print(f"{db.checked_name(url)}: {counts} in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
