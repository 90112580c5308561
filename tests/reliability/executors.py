"""Job types of the reliability suite (registered on import, like any application's).

Each one appends "job_id attempt pid" to the file named by RELIABILITY_RUN_LOG when it starts:
an account of what really ran, kept outside the tables under test, so "no attempt ran twice"
is checked against something the job runner did not write itself.
"""

import os
import time
from functools import wraps

from jobs.models import Job
from jobs.registry import job_executor

RUN_LOG_ENV = "RELIABILITY_RUN_LOG"


def recorded(func):
    @wraps(func)
    def run(params, ctx):
        path = os.environ.get(RUN_LOG_ENV)
        if path:
            # One short write with O_APPEND: lines from concurrent workers never interleave.
            with open(path, "a") as log:
                log.write(f"{ctx.job_id} {ctx.attempt} {os.getpid()}\n")
        return func(params, ctx)

    return run


@job_executor("reliability.quick")
@recorded
def quick(params, ctx):
    return {"n": params.get("n")}


@job_executor("reliability.steps")
@recorded
def steps(params, ctx):
    """`steps` progress reports, `seconds` apart (0 by default)."""
    count = params.get("steps", 5)
    for step in range(1, count + 1):
        ctx.sleep(params.get("seconds", 0))
        ctx.progress(step * 100 // count, f"step {step}/{count}")
    return {"steps": count}


@job_executor("reliability.flaky", max_attempts=3)
@recorded
def flaky(params, ctx):
    """Fails transiently on its first `fail_times` attempts (for good when that is all of them)."""
    ctx.progress(50, f"attempt {ctx.attempt}")
    if ctx.attempt <= params.get("fail_times", 1):
        raise ConnectionResetError(f"connection reset by peer (attempt {ctx.attempt})")
    return {"succeeded_on_attempt": ctx.attempt}


@job_executor("reliability.bad_data")
@recorded
def bad_data(params, ctx):
    raise ValueError(f"candidate record {params.get('record', 0)} is malformed")


@job_executor("reliability.db_reader", max_attempts=5)
@recorded
def db_reader(params, ctx):
    """Reads the database itself every 50 ms for `seconds`: an outage fails it (transient)."""
    ctx.progress(1, "reading")
    deadline = time.monotonic() + params.get("seconds", 2)
    reads = 0
    while time.monotonic() < deadline:
        Job.objects.filter(id=ctx.job_id).exists()
        reads += 1
        ctx.sleep(0.05)
    ctx.progress(100, f"{reads} reads")
    return {"reads": reads}


class _Library:
    """Stands for third-party code that calls back with its progress."""

    @staticmethod
    def process(items: int, on_progress):
        for done in range(1, items + 1):
            on_progress(done * 100 // items)


@job_executor("reliability.progress_raises", max_attempts=1)
@recorded
def progress_raises(params, ctx):
    """The executor's progress callback fails in the way `how` says."""
    how = params["how"]

    def on_progress(percent):
        if how == "callback_raises" and percent >= 50:
            raise ValueError("progress callback: could not format the progress message")
        if how == "bad_percent":
            ctx.progress("half-way")
        elif how == "unserialisable_details":
            ctx.progress(percent, "with odd details", details={"handle": object(), "ids": {1, 2}})
        else:
            ctx.progress(percent)

    _Library.process(4, on_progress)
    return {"processed": 4}


@job_executor("reliability.never_returns", timeout=1, max_attempts=1)
@recorded
def never_returns(params, ctx):
    """Never ends by itself: spins on the CPU, sleeps, or also swallows the timeout's exception."""
    how = params.get("how", "spin")
    while True:
        try:
            if how in ("spin", "swallow"):
                while True:
                    pass
            time.sleep(3600)
        except BaseException:
            if how != "swallow":
                raise


_LEAKED: list[bytes] = []


@job_executor("reliability.leaks_memory", max_attempts=1)
@recorded
def leaks_memory(params, ctx):
    """Keeps `mb` MiB alive after it returns, as a leak does (written, so really resident)."""
    _LEAKED.append(b"x" * (params.get("mb", 100) * 1024 * 1024))
    ctx.progress(100, "leaked")
    return {"leaked_mb": params.get("mb", 100) * len(_LEAKED), "pid": os.getpid()}


@job_executor("reliability.raises_message", max_attempts=1)
@recorded
def raises_message(params, ctx):
    """Fails with exactly the message it was given (hostile text in error messages), padded with
    `pad` x's (a message bigger than any parameters may be)."""
    raise ValueError(params["message"] + "x" * params.get("pad", 0))
