"""What the throughput and memory figures run.

`noop` is the bare django-q2 task (baseline); `bench.noop` the same nothing as a monitored
job: job row, started, 10 progress reports (at the default throttle), completed.
"""

from jobs.registry import job_executor


def noop():
    """A django-q2 task that does nothing."""


@job_executor("bench.noop", description="Does nothing, reporting progress in 10 steps (the benchmark's job).")
def monitored_noop(params: dict, ctx) -> None:
    for step in range(1, 11):
        ctx.progress(step * 10, f"step {step}/10")
