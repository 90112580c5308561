"""`python -m bench` (or `make bench`): every figure of docs/benchmark.md, one table at the end.

Creates its own Postgres database (BENCH_DATABASE_URL, whose name must start with bench_),
migrates it, runs each figure in a process of its own, and drops the database at the end,
whatever happens. Redis figures use BENCH_REDIS_URL (default redis://127.0.0.1:6379/10)
and are skipped, saying why, when Redis does not answer.
"""

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import data, db
from bench.report import Row, info, judged, median, ms, per_second, skipped, table

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
THROUGHPUT_TARGET = ">= 0.9"
METRICS_TARGET = "<= 1.5"
LISTS_TARGET = "<= 2.0"
DOCUMENTED_SETTINGS = "bench.documented_settings"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,  # --help shows each default
    )
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per throughput run (figure 1)")
    parser.add_argument("--orm-reps", type=int, default=2, help="runs of each kind with the ORM broker")
    parser.add_argument("--redis-reps", type=int, default=2, help="runs of each kind with the Redis broker")
    parser.add_argument("--memory-jobs", type=int, default=10_000, help="jobs through one worker (figure 5)")
    parser.add_argument(
        "--sizes", default="100000,1000000,5000000", help="job_execution_logs rows for figure 3, comma-separated"
    )
    parser.add_argument("--active", default="1000,10000", help="active jobs for figure 4: two sizes")
    parser.add_argument("--seed", type=int, default=data.SEED)
    parser.add_argument("--only", default="1,2,3,4,5", help="figures to run, e.g. 3,4")
    parser.add_argument("--keep-db", action="store_true", help="leave the benchmark database for inspection")
    parser.add_argument("--json", help="also write every measurement to this file")
    return parser.parse_args(argv)


def redis_problem(url: str) -> str | None:
    """None when Redis answers at `url`; otherwise why not."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as e:
        return f"Redis at {url} does not answer ({e})"
    return None


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    import psutil

    memory_gb = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores {model}, {memory_gb:.0f} GB RAM, {platform.system()} {platform.release()}"


class Bench:
    def __init__(self, args):
        self.args = args
        self.url = db.database_url()
        db.checked_name(self.url)  # refuse before touching anything
        self.memory_url = db.sibling_url(self.url, "_memory")  # figure 5's
        self.created: list[str] = []  # dropped at the end
        self.redis_url = os.getenv("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": self.url,
            "SECRET_KEY": "benchmark-only-secret-key",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "Q_CLUSTER_NAME": "bench",
            "PYTHONPATH": str(ROOT),
            # As the periodic tasks (setup_database): each node's own resource sampler, which reads the
            # CPU for a second each minute and writes its readings, would compete with what is measured.
            "HEALTH_SAMPLE_NODE_RESOURCES": "false",
        }
        for name in ("REDIS_URL", "Q_WORKERS", "Q_RECYCLE"):  # the project's defaults, unless a figure says otherwise
            self.env.pop(name, None)
        self.rows: list[Row] = []
        self.results: dict = {}
        self.figures = {int(f) for f in args.only.split(",")}

    # --- plumbing -------------------------------------------------------------------------

    def phase(self, name: str, kwargs: dict, **env) -> dict:
        """Run a phase in its own process; its rows (if it judges itself) join the table."""
        return self.start_phase(name, kwargs, **env).result()

    def start_phase(self, name: str, kwargs: dict, **env) -> "RunningPhase":
        """Start a phase in its own process and return at once: `.result()` waits for it."""
        return RunningPhase(self, name, kwargs, {**self.env, **env})

    def step(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def setup_database(self, url: str) -> None:
        self.step(f"creating {db.checked_name(url)} and migrating")
        db.create_database(url)
        self.created.append(url)
        env = {**self.env, "DATABASE_URL": url}
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        with db.connect(url, autocommit=True) as conn:
            self.server_version = conn.execute("SHOW server_version").fetchone()[0]
            # Periodic tasks (health checks, alert sweeps) would compete with what is measured.
            conn.execute("DELETE FROM django_q_schedule")

    # --- figures --------------------------------------------------------------------------

    def event_recording(self) -> None:
        self.step("figure 2: progress events against raw INSERTs")
        self.results["events"] = self.phase("events", {})

    def throughput(self) -> None:
        brokers = {"ORM": ({}, self.args.orm_reps)}
        problem = redis_problem(self.redis_url)
        if problem:
            self.rows.append(skipped("1. throughput, Redis broker (b/a)", problem, THROUGHPUT_TARGET))
        else:
            brokers["Redis"] = ({"REDIS_URL": self.redis_url}, self.args.redis_reps)
        for label, (env, reps) in brokers.items():
            # The documented baseline runs once (2,000 tasks at ~25/s with the ORM broker is the
            # longest run of all); the project's runs alternate bare and monitored after it.
            documented = {"n": self.args.jobs, "reps": 1, "modes": ["bare"]}
            self.step(f"figure 1: {self.args.jobs} tasks, bare django-q2 as documented, {label} broker")
            baseline = self.phase("overhead_documented", documented, DJANGO_SETTINGS_MODULE=DOCUMENTED_SETTINGS, **env)
            self.step(f"figure 1: {self.args.jobs} jobs per run, bare and monitored on the project's settings")
            project = self.phase("overhead", {"n": self.args.jobs, "reps": reps}, **env)
            self.results[f"overhead_{label.lower()}"] = {"documented": [baseline], "project": project}
            self.rows += throughput_rows([baseline], project)

    def start_memory(self) -> "RunningPhase":
        """Figure 5 in a database of its own: it measures memory, not time, so it can run while
        the history is generated (which it would otherwise join)."""
        jobs = self.args.memory_jobs
        redis = {} if redis_problem(self.redis_url) else {"REDIS_URL": self.redis_url}
        self.setup_database(self.memory_url)
        self.step(f"figure 5: {jobs} jobs through one worker ({'Redis' if redis else 'ORM'} broker)")
        env = {"DATABASE_URL": self.memory_url, "Q_WORKERS": "1", "Q_RECYCLE": str(jobs * 10), **redis}
        return self.start_phase("memory", {"jobs": jobs}, **env)

    def history(self) -> None:
        sizes = [int(s) for s in self.args.sizes.split(",")]
        until = datetime.now(UTC)
        metrics = {}
        with db.connect(self.url) as conn:
            conn.execute("TRUNCATE jobs, job_retry_history, job_execution_logs, alert_history CASCADE")
            conn.commit()
            for number, size in enumerate(sizes, 1):
                # The largest layer takes longest to generate: figure 5 runs meanwhile and is
                # over before the next timed figure starts.
                alongside = self.start_memory() if number == len(sizes) and 5 in self.figures else None
                try:
                    counts = self.add_layer(conn, number, size, until)
                    if alongside is not None:
                        self.results["memory"] = alongside.result()
                        self.step("figure 5: done")
                finally:
                    if alongside is not None:
                        alongside.stop()  # a no-op unless the generation failed
                if 3 in self.figures:
                    self.step(f"figure 3: metrics over {counts['job_execution_logs']:,} rows")
                    metrics[size] = self.phase("metrics", {}) | {"rows": counts}
            self.results["metrics"] = metrics
            if 3 in self.figures:
                self.rows += metrics_rows(metrics)
            if 4 in self.figures:
                self.lists(conn, until)

    def add_layer(self, conn, number: int, size: int, until: datetime) -> dict[str, int]:
        have = data.table_counts(conn)["job_execution_logs"]
        jobs = max(0, round((size - have) / data.rows_per_job()))
        self.step(f"generating history up to {size:,} event rows ({jobs:,} more jobs)")
        started = time.perf_counter()
        with conn.cursor() as cursor:
            data.generate_layer(cursor, tag=f"layer{number}", jobs=jobs, until=until, seed=self.args.seed)
        conn.commit()
        data.vacuum_analyze(conn)
        counts = data.table_counts(conn)
        self.step(f"  {counts} in {time.perf_counter() - started:.0f}s")
        return counts

    def lists(self, conn, until) -> None:
        small, large = (int(s) for s in self.args.active.split(","))
        found = {}
        for first, last in ((1, small), (small + 1, large)):
            with conn.cursor() as cursor:
                data.add_active_jobs(cursor, first=first, last=last, total=large, until=until, seed=self.args.seed)
            conn.commit()
            data.vacuum_analyze(conn)
            self.step(f"figure 4: lists with {last:,} active jobs")
            found[last] = self.phase("lists", {})
        self.results["lists"] = found
        self.rows += lists_rows(found[small], found[large])

    def run(self) -> int:
        started = time.perf_counter()
        load_before = os.getloadavg()
        self.setup_database(self.url)
        try:
            if 2 in self.figures:
                self.event_recording()
            if 1 in self.figures:
                self.throughput()
            if self.figures & {3, 4}:
                self.history()  # figure 5 alongside, when asked
            elif 5 in self.figures:
                self.results["memory"] = self.start_memory().result()
        finally:
            for url in self.created:
                if self.args.keep_db:
                    self.step(f"kept {db.checked_name(url)}")
                else:
                    db.drop_database(url)
        elapsed = time.perf_counter() - started
        print()
        print(f"Machine: {machine()}; PostgreSQL {self.server_version}; Python {platform.python_version()}")
        print(
            f"Load average (1 min) {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after: the machine is shared, "
            f"so each figure is a median of alternating runs. Whole run: {elapsed / 60:.1f} min."
        )
        print()
        print(table(self.rows))
        if self.args.json:
            Path(self.args.json).write_text(json.dumps({"rows": [r.as_dict() for r in self.rows], **self.results}))
        return 1 if any(r.passed is False for r in self.rows) else 0


class RunningPhase:
    """A phase running in its own process (`python -m bench.phase`)."""

    def __init__(self, bench: Bench, name: str, kwargs: dict, env: dict):
        self.bench = bench
        self.out = tempfile.NamedTemporaryFile(suffix=".json")  # noqa: SIM115 - lives until stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.phase", name, json.dumps(kwargs), self.out.name], cwd=ROOT, env=env
        )

    def result(self) -> dict:
        """Wait for the phase; its rows (if it judges itself) join the table."""
        try:
            if self.process.wait() != 0:
                raise subprocess.CalledProcessError(self.process.returncode, self.process.args)
            found = json.loads(Path(self.out.name).read_text())
        finally:
            self.stop()
        self.bench.rows += [Row(**row) for row in found["rows"]]
        return found["result"]

    def stop(self) -> None:
        """Interrupt the phase if it still runs (its cluster stops on the KeyboardInterrupt)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.out.close()


def _cpu_per_job(runs: list[dict]) -> dict[str, float]:
    return {part: median(r["cpu_ms_per_job"][part] for r in runs) for part in ("enqueue", "cluster", "postgres")}


def throughput_rows(documented: list[dict], project: dict) -> list:
    """The judged row (monitored against documented bare django-q2) and what explains it.

    `documented`: the documented-baseline phases' results; `project`: the project phase's,
    bare and monitored.
    """
    label = project["broker"]
    bare_documented = median(r["per_s"] for result in documented for r in result["runs"]["bare"])
    bare_tuned = median(r["per_s"] for r in project["runs"]["bare"])
    ours = median(r["per_s"] for r in project["runs"]["monitored"])
    checked = project["checks"]
    progress = checked["events"].get("progress", 0)
    n = sum(r["n"] for r in project["runs"]["monitored"])
    note = (
        f"bare: {sum(len(result['runs']['bare']) for result in documented)} run(s) on "
        f"{documented[0]['settings']} (CONN_MAX_AGE {documented[0]['conn_max_age']}, django-q2's defaults); "
        f"monitored: {len(project['runs']['monitored'])} run(s) on {project['settings']}; "
        f"{project['runs']['monitored'][0]['n']} jobs each, median; {project['workers']} workers; "
        f"{progress / max(checked['jobs'], 1):.1f} progress events written per job of 10 reported"
    )
    problems = []
    if checked["not_completed"] or checked["failed_tasks"]:
        problems.append(f"{checked['not_completed']} jobs not completed, {checked['failed_tasks']} failed tasks")
    if checked["jobs"] < n:
        problems.append(f"only {checked['jobs']} of {n} jobs recorded")
    row = judged(
        f"1. throughput, {label} broker (b/a)",
        per_second(bare_documented),
        per_second(ours),
        ours / bare_documented,
        THROUGHPUT_TARGET,
        note,
    )
    if problems:
        row.passed = False
        row.note += "; " + "; ".join(problems)
    enqueue_bare = median(r["n"] / r["enqueue_seconds"] for r in project["runs"]["bare"])
    enqueue_ours = median(r["n"] / r["enqueue_seconds"] for r in project["runs"]["monitored"])
    cpu = {mode: _cpu_per_job(project["runs"][mode]) for mode in ("bare", "monitored")}
    cpu_documented = _cpu_per_job([r for result in documented for r in result["runs"]["bare"]])
    parts = ("enqueue", "cluster", "postgres")
    return [
        row,
        info(
            f"   same, bare django-q2 on the project's settings, {label}",
            per_second(bare_tuned),
            per_second(ours),
            ours / bare_tuned,
            f"the same cluster and settings (CONN_MAX_AGE {project['conn_max_age']}, results not saved) for both: "
            "what the job's own rows cost",
        ),
        info(
            f"   CPU per job, {label} broker",
            f"{sum(cpu['bare'].values()):.2f} ms",
            f"{sum(cpu['monitored'].values()):.2f} ms",
            sum(cpu["monitored"].values()) / sum(cpu["bare"].values()),
            "project's settings, bare against monitored; enqueue / cluster / postgres: "
            + "; ".join(f"{mode} " + " / ".join(f"{cpu[mode][part]:.2f}" for part in parts) for mode in cpu)
            + "; documented bare "
            + " / ".join(f"{cpu_documented[part]:.2f}" for part in parts)
            + " (its Postgres part is undercounted: a backend that lives for one task ends between samples)",
        ),
        info(
            f"   enqueue only, {label} broker",
            f"{enqueue_bare:.0f} tasks/s",
            f"{enqueue_ours:.0f} jobs/s",
            enqueue_ours / enqueue_bare,
            "async_task() against submit_job() on the project's settings, while the cluster works",
        ),
    ]


def metrics_rows(metrics: dict) -> list[Row]:
    rows = []
    for size, result in metrics.items():
        for timeframe, t in result["timeframes"].items():
            note = (
                f"{t['outcomes_in_window']:,} outcomes in the window; {t['queries']} queries; "
                f"same numbers as the raw SQL: {'yes' if t['agree'] else 'NO'}; "
                f"request floor {ms(result['floor_s'])}"
            )
            row = judged(
                f"3. GET /api/monitoring/metrics {timeframe}, {size:,} rows",
                ms(t["raw_s"]),
                ms(t["ours_s"]),
                t["ours_s"] / t["raw_s"],
                METRICS_TARGET,
                note,
            )
            if not t["agree"]:
                row.passed = False
            rows.append(row)
    if len(metrics) > 1:
        smallest, largest = min(metrics), max(metrics)
        low, high = (metrics[smallest]["timeframes"]["1h"]["ours_s"], metrics[largest]["timeframes"]["1h"]["ours_s"])
        rows.append(
            judged(
                f"3. 1h at {largest:,} rows vs at {smallest:,}",
                ms(low),
                ms(high),
                high / low,
                METRICS_TARGET,
                "the window's cost should follow the window, not the table",
            )
        )
    return rows


def lists_rows(small: dict, large: dict) -> list[Row]:
    rows = []
    for name, what in (("api", "GET /api/monitoring/jobs"), ("dashboard", "dashboard job-list partial")):
        t = large[name]
        rows.append(
            judged(
                f"4. {what}, {large['active_jobs']:,} active",
                ms(t["raw_s"]),
                ms(t["ours_s"]),
                t["ours_s"] / t["raw_s"],
                LISTS_TARGET,
                f"{large['log_rows']:,} log rows; {t['queries']} queries; "
                f"request floor (nothing to list) {ms(t['floor_s'])}",
            )
        )
        same = small[name]["queries"] == t["queries"]
        rows.append(
            Row(
                f"4. {what}: queries, {small['active_jobs']:,} vs {large['active_jobs']:,} active",
                str(small[name]["queries"]),
                str(t["queries"]),
                None,
                "same",
                same,
            )
        )
    return rows


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
