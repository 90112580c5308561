"""Job types used only by the tests (registered on import, like any application's)."""

from django.db import OperationalError

from jobs.registry import job_executor


@job_executor("test.echo")
def echo(params, ctx):
    return {"echo": params}


@job_executor("test.progress")
def progress(params, ctx):
    for percent in params.get("reports", [10, 20, 30, 40, 50, 60, 70, 80, 90]):
        ctx.progress(percent, f"at {percent}%")
    return {"done": True}


@job_executor("test.raise", max_attempts=3)
def raise_error(params, ctx):
    errors = {
        "transient": lambda: ConnectionResetError("connection reset by peer"),
        "data": lambda: ValueError(params.get("message", "bad candidate record")),
        "configuration": lambda: __import__("django.core.exceptions").core.exceptions.ImproperlyConfigured("no key"),
        "database": lambda: OperationalError("server closed the connection unexpectedly"),
    }
    raise errors[params["kind"]]()


@job_executor("test.until_cancelled")
def until_cancelled(params, ctx):
    if params.get("cancel_self"):  # as if an operator clicked Cancel right now
        from jobs.manager import job_manager

        job_manager.cancel_job_sync(ctx.job_id, by="bob")
    while True:
        if params.get("report_progress"):
            ctx.progress(50, "halfway")
        else:
            ctx.check_cancelled()
        ctx.sleep(0.01)


@job_executor("test.timeout")
def times_out(params, ctx):
    from django_q.exceptions import TimeoutException

    raise TimeoutException("Task exceeded maximum timeout value (1 seconds)")


@job_executor("test.async")
async def async_job(params, ctx):
    import asyncio

    for percent in (50, 100):
        await asyncio.sleep(0)
        await ctx.aprogress(percent, f"async at {percent}%")
    return {"async": True}


@job_executor("test.not_json_numbers")
def not_json_numbers(params, ctx):
    ctx.progress(50, "half-way", details={"score": float("nan")})
    return {"score": float("inf")}


@job_executor("test.cancelled_then_fails", max_attempts=3)
def cancelled_then_fails(params, ctx):
    from jobs.manager import job_manager

    job_manager.cancel_job_sync(ctx.job_id, by="bob")  # as if an operator clicked Cancel right now
    raise ConnectionResetError("connection reset by peer")  # transient: would be retried


@job_executor("test.outlived_by_its_retry")
def outlived_by_its_retry(params, ctx):
    """Goes silent so long (a paused VM, a network partition) that the sweep takes its attempt
    back and the next attempt starts on another worker; then returns as if nothing happened."""
    from datetime import timedelta

    from django.utils import timezone

    from jobs.manager import job_manager

    an_hour_later = timezone.now() + timedelta(hours=1)
    job_manager.recover_stale_jobs(now=an_hour_later)
    job_manager.dispatch_due_retries(now=an_hour_later + timedelta(minutes=10))
    job_manager._claim(ctx.job_id, ctx.attempt + 1)  # another worker takes the next attempt
    return {"late": True}
