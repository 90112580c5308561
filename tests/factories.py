"""Test data. Time fields default to "now"; tests that care pass times explicitly."""

from datetime import timedelta

import factory
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from alerts.models import AlertHistory, Severity
from jobs.models import IdempotencyKey, Job, JobRetryHistory, JobStatus, RetryStatus
from monitoring.models import ApiToken, EventType, HealthStatus, JobExecutionLog, MetricType, SystemHealthMetric
from monitoring.tokens import hash_token


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def permissions(user, create, codenames, **kwargs):
        """UserFactory(permissions=["jobs.view_job", "alerts.change_alerthistory"])"""
        for codename in codenames or ():
            app_label, code = codename.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=code))


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    job_type = "demo.sleep"
    parameters = factory.LazyFunction(lambda: {"seconds": 1.0, "steps": 10})
    status = JobStatus.QUEUED
    max_attempts = 3

    class Params:
        running = factory.Trait(
            status=JobStatus.RUNNING,
            attempts=1,
            started_at=factory.LazyFunction(timezone.now),
            attempt_started_at=factory.SelfAttribute("started_at"),
            # A live worker's heartbeat is seconds old, however long the attempt has run.
            heartbeat_at=factory.LazyFunction(timezone.now),
            worker="worker-1:1234",
        )
        completed = factory.Trait(
            status=JobStatus.COMPLETED,
            attempts=1,
            progress=100,
            started_at=factory.LazyFunction(timezone.now),
            attempt_started_at=factory.SelfAttribute("started_at"),
            finished_at=factory.SelfAttribute("started_at"),
            result={"ok": True},
        )
        failed = factory.Trait(
            status=JobStatus.FAILED,
            attempts=3,
            started_at=factory.LazyFunction(timezone.now),
            attempt_started_at=factory.SelfAttribute("started_at"),
            finished_at=factory.SelfAttribute("started_at"),
            error_class="transient",
            message="httpx.ConnectTimeout: timed out",
            last_error={
                "type": "httpx.ConnectTimeout",
                "message": "timed out",
                "error_class": "transient",
                "retryable": False,
                "fingerprint": "0123456789abcdef",
            },
        )


class JobExecutionLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobExecutionLog

    job = factory.SubFactory(JobFactory)
    event_type = EventType.PROGRESS
    status = JobStatus.RUNNING
    progress = 50
    message = "halfway"
    details = factory.LazyFunction(lambda: {"attempt": 1})


class JobRetryHistoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobRetryHistory

    job = factory.SubFactory(JobFactory)
    attempt_number = 1
    status = RetryStatus.SUCCESS


class IdempotencyKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IdempotencyKey

    owner = factory.SubFactory(UserFactory)
    key = factory.Sequence(lambda n: f"key-{n}")
    request_hash = "0" * 64
    job = factory.SubFactory(JobFactory)


class SystemHealthMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SystemHealthMetric

    metric_type = MetricType.DATABASE
    metric_name = "database.latency_ms"
    metric_value = 1.5
    status = HealthStatus.HEALTHY
    details = factory.LazyFunction(dict)


def health_result(
    name: str,
    status: str,
    *,
    now,
    minutes_ago: float,
    value: float = 1.0,
    metric_type=MetricType.DATABASE,
    host: str | None = None,
):
    """One stored health-check result, `minutes_ago` before `now`, with the message a check writes;
    a resource reading names its `host`, as the checks do."""
    message = f"{name} is {status}" + (f" on {host}" if host else "")
    return SystemHealthMetricFactory(
        metric_type=metric_type,
        metric_name=name,
        status=status,
        metric_value=value,
        timestamp=now - timedelta(minutes=minutes_ago),
        details={"message": message, **({"host": host} if host else {})},
    )


class AlertHistoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertHistory

    alert_type = "job_failure"
    severity = Severity.ERROR
    title = "demo.fail failed"
    message = "httpx.ConnectTimeout: timed out"
    recipients = factory.LazyFunction(lambda: ["ops@example.com"])


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A token row whose secret nobody needs (api_token_create gives one to send)."""

    class Meta:
        model = ApiToken

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"integration {n}")
    token_hash = factory.Sequence(lambda n: hash_token(f"jm_factory-{n}"))
    prefix = factory.Sequence(lambda n: f"jm_f{n:05d}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=90))
