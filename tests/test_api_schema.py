"""Property-based run of the whole OpenAPI schema (schemathesis): whatever a client sends,
the API answers without a 5xx and with a response its own schema allows.

Each operation is driven through the real WSGI application (middleware, auth, CSRF) with a
token of a user who has every permission, with requests that fit the schema (positive) and
requests that break it (negative), against a database holding jobs in every state, alerts and
health results, so that path parameters name real jobs and alerts as well as random UUIDs.
"""

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection

from config.api import api
from alerts.manager import alert_manager
from alerts.models import AlertHistory
from jobs.models import Job, JobStatus, JobTypePause
from tests.factories import AlertHistoryFactory, JobExecutionLogFactory, JobFactory, SystemHealthMetricFactory

# Generated requests per operation and mode: enough to hit the shapes that break things (odd
# UUIDs, control characters, huge numbers, wrong types, missing fields) and keep the suite quick.
MAX_EXAMPLES = 30

OPERATIONS = [
    (method.upper(), path) for path, methods in api.get_openapi_schema(path_params={})["paths"].items() for method in methods
]


@pytest.fixture
def wsgi_app():
    """The real WSGI application, kept from closing the test's database connection after each
    request (as Django's test client does)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def existing_ids(db):
    """{path parameter: ids of rows that exist}: jobs in every state, alerts open and resolved;
    and short ids (prefixes) of one job, and of two."""
    jobs = [
        JobFactory(status=JobStatus.QUEUED),
        JobFactory(running=True),
        JobFactory(status=JobStatus.RETRYING, error_class="transient"),
        JobFactory(failed=True),
        JobFactory(completed=True),
    ]
    JobExecutionLogFactory(job=jobs[3], event_type="error", error_details={"traceback": "Traceback …"})
    # Outcomes with and without their details, so the metrics have something to group.
    JobExecutionLogFactory(
        job=jobs[3],
        event_type="error",
        status="failed",
        execution_time_ms=40,
        error_details={"type": "OSError", "message": "disk full", "error_class": "system", "fingerprint": "f"},
    )
    JobExecutionLogFactory(job=jobs[4], event_type="completed", status="completed", execution_time_ms=120)
    SystemHealthMetricFactory(details={"message": "SELECT 1 answered in 1.5 ms"})
    SystemHealthMetricFactory(metric_type="api", metric_name="ai_matching", status="critical", details=None)
    alerts = [
        alert_manager.process_alert_sync(
            "job_failure", "error", {"title": "t", "message": "m", "job_id": jobs[3].id, "job_type": "demo.sleep"}
        ),
        AlertHistoryFactory(job=jobs[3], notification_sent=None, escalated=None),
        AlertHistoryFactory(alert_type="system_health", job=None, severity="critical", resolved_at=timezone.now()),
    ]
    twins = [JobFactory(id=f"3f2a1b4c-0000-4000-8000-00000000000{n}") for n in (1, 2)]  # one short id, two jobs
    short_ids = [str(jobs[3].id)[:8], str(jobs[1].id)[:13].upper(), str(twins[0].id)[:8]]
    return {
        "job_id": [str(job.id) for job in jobs],
        "alert_id": [str(alert.id) for alert in alerts],
        "short_job_id": short_ids,
    }


def test_every_operation_is_covered():
    assert OPERATIONS == [
        ("GET", "/api/monitoring/jobs"),
        ("GET", "/api/monitoring/jobs/finished"),
        ("GET", "/api/monitoring/jobs/{job_id}"),
        ("GET", "/api/monitoring/jobs/{job_id}/events"),
        ("GET", "/api/monitoring/health"),
        ("GET", "/api/monitoring/metrics"),
        ("GET", "/api/monitoring/alerts"),
        ("POST", "/api/monitoring/alerts/{alert_id}/resolve"),
        ("POST", "/api/monitoring/alerts/{alert_id}/acknowledge"),
        ("POST", "/api/jobs"),
        ("POST", "/api/jobs/{job_id}/cancel"),
        ("POST", "/api/jobs/{job_id}/retry"),
        ("GET", "/api/jobs/paused"),
        ("POST", "/api/jobs/pause"),
        ("POST", "/api/jobs/resume"),
    ]


def fuzz(wsgi_app, headers: dict, existing_ids: dict, method: str, path: str, mode, *, max_examples: int, checks=()):
    """Drive one operation with schemathesis: generated requests (fitting the schema, or breaking
    it), each answered without a 5xx and within the schema, plus `checks`."""
    # Loading the schema the way a client does (with the token) is part of the test.
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_app, headers=headers)
    # Every request carries the real token (auth is tested in test_api_auth.py): a generated
    # Authorization header would be replaced by it, so a "bad" one would reach the API valid.
    schema.config.generation.update(with_security_parameters=False)
    operation = schema[path][method]
    parameters = [p for p in operation.iter_parameters() if "x-original-security-type" not in p.definition]
    if mode == GenerationMode.NEGATIVE and not parameters and not list(operation.body):
        pytest.skip("no parameter and no body: nothing a client could send wrong")
    strategy = operation.as_strategy(mode)
    samples = dict(existing_ids)
    if method == "GET" and path.startswith("/api/monitoring/jobs/{job_id}"):
        # It also takes a short id: of one job (200), of two (409).
        samples["job_id"] = samples["job_id"] + samples["short_job_id"]
    for name, ids in samples.items():
        if f"{{{name}}}" in path:
            # Half of the time a row that exists (in whatever state the run has brought it to).
            real = st.sampled_from(ids).map(lambda id, name=name: {name: id})
            strategy = st.one_of(
                strategy, real.flatmap(lambda params: operation.as_strategy(mode, path_parameters=params))
            )

    # A job type's parameters are checked by its own pydantic model, which like any pydantic
    # model in its default mode takes "13" for 13: so a value the schema calls wrong may be
    # accepted there. Every other check still runs on submissions.
    excluded = [negative_data_rejection] if (method, path) == ("POST", "/api/jobs") else []

    @given(case=strategy)
    @settings(max_examples=max_examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def answers(case):
        # A made-up Host is refused by Django (ALLOWED_HOSTS, 400) before any API code runs.
        for name in [name for name in case.headers or {} if name.lower() == "host"]:
            del case.headers[name]
        misjudged = [negative_data_rejection] if sends_a_python_repr(case.query) else []
        case.call_and_validate(headers=headers, excluded_checks=excluded + misjudged, additional_checks=list(checks))

    answers()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("method, path", OPERATIONS)
def test_the_api_answers_within_its_schema(wsgi_app, alice, bearer, existing_ids, method, path, mode):
    fuzz(wsgi_app, bearer(alice), existing_ids, method, path, mode, max_examples=MAX_EXAMPLES)


def sends_a_python_repr(query) -> bool:
    """Whether a query value is an object, or a list holding one or another list.

    A URL carries such a value as its Python repr (`job_type={'': 'null'}`): a plain string,
    which a free-text parameter rightly accepts. negative_data_rejection judges the object
    that was never sent and reports "schema-violating request accepted" (schemathesis #4600
    fixed one shape of this; others remain), so that one check is skipped for such cases.
    """
    values = [item for value in (query or {}).values() for item in (value if isinstance(value, list) else [value])]
    return any(isinstance(item, (dict, list)) for item in values)



def _state() -> tuple:
    """What an action could change: every job's status and cancel request, every alert's resolution,
    the paused job types."""
    jobs = sorted(map(str, Job.objects.values_list("id", "status", "cancel_requested_at")))
    alerts = sorted(map(str, AlertHistory.objects.values_list("id", "resolved_at")))
    return jobs, alerts, sorted(JobTypePause.objects.values_list("job_type", flat=True))


@pytest.mark.parametrize("method, path", OPERATIONS)
def test_every_operation_refuses_a_query_parameter_it_does_not_have(client, alice, bearer, existing_ids, method, path):
    # A typo such as ?staus=failed must not be silently ignored, on reads and on actions alike.
    url = path.replace("{job_id}", existing_ids["job_id"][3]).replace("{alert_id}", existing_ids["alert_id"][0])
    bodies = {"/api/jobs": {"job_type": "test.echo", "parameters": {}}, "/api/jobs/pause": {"job_type": "test.echo"}}
    body = bodies.get(path.replace("/resume", "/pause"), {})
    before = _state()

    response = client.generic(
        method, f"{url}?bogus=1", data=json.dumps(body), content_type="application/json", headers=bearer(alice)
    )

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "bogus"
    assert _state() == before
