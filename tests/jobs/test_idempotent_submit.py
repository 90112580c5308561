"""POST /api/jobs with an `Idempotency-Key`: a submit sent again (its answer lost to a broken
connection, or a 503 from a commit that went through) answers the job it made, not a second one."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django_q.models import OrmQ

from jobs import idempotency, manager
from jobs.manager import job_manager
from jobs.models import IdempotencyKey, Job
from monitoring.models import JobExecutionLog
from tests.concurrency import at_once
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
BODY = {"job_type": "demo.sleep", "parameters": {"seconds": 2}, "max_attempts": 3}


@pytest.fixture
def bob(db):
    """Another operator who may submit: his keys are his own."""
    return UserFactory(username="bob", permissions=["jobs.view_job", "jobs.add_job"])


def submit(client, body=BODY, key="order-42-email", headers=None):
    headers = (headers or {}) | ({"Idempotency-Key": key} if key is not None else {})
    return client.post("/api/jobs", json.dumps(body), content_type="application/json", headers=headers)


def test_the_same_key_and_request_again_answers_the_first_job(as_alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = submit(as_alice)
        again = submit(as_alice)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()  # the same body shape as the 201, of the same job
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Job.objects.count() == 1
    assert JobExecutionLog.objects.count() == 1  # the first submit's "queued" event only
    assert OrmQ.objects.count() == 1  # queued once


def test_a_replay_answers_the_job_as_it_is_now(as_alice):
    job_id = submit(as_alice).json()["id"]
    Job.objects.filter(id=job_id).update(status="running", attempts=1)

    again = submit(as_alice)

    assert again.status_code == 200
    assert (again.json()["id"], again.json()["status"], again.json()["attempts"]) == (job_id, "running", 1)


def test_a_replay_reads_the_key_and_its_job_in_one_query(as_alice, django_assert_max_num_queries):
    submit(as_alice)
    # Session, user (its permissions apart on SQLite), then the key with its job: no insert, no event.
    with django_assert_max_num_queries(4):
        again = submit(as_alice)
    assert again.status_code == 200


def test_a_new_key_costs_its_lookup_and_its_row_only(as_alice, is_postgres, django_assert_max_num_queries):
    login = 2 if is_postgres else 3  # the session, the user with their permissions (SQLite: in two queries)
    # The key looked up, a savepoint, the job, its event, the key, release: two more than without a
    # key (a key past its 24 hours is deleted when the lookup finds it, not looked for before each insert).
    with django_assert_max_num_queries(login + 6):
        first = submit(as_alice)
    assert first.status_code == 201


def test_the_same_key_with_another_request_is_a_409_naming_the_header_and_the_job(as_alice):
    job_id = submit(as_alice).json()["id"]

    for other in (
        {**BODY, "parameters": {"seconds": 3}},
        {**BODY, "max_attempts": 4},
        {"job_type": "test.echo"},
    ):
        response = submit(as_alice, other)
        assert response.status_code == 409, other
        body = response.json()
        assert [e["field"] for e in body["errors"]] == ["Idempotency-Key"]
        assert body["job_id"] == job_id
        assert "Idempotency-Key 'order-42-email'" in body["detail"] and job_id in body["detail"]
    assert Job.objects.count() == 1


def test_the_request_is_compared_whatever_the_order_of_its_keys(as_alice):
    first = submit(as_alice, {"max_attempts": 3, "parameters": {"steps": 4, "seconds": 2}, "job_type": "demo.sleep"})
    again = submit(as_alice, {"job_type": "demo.sleep", "parameters": {"seconds": 2, "steps": 4}, "max_attempts": 3})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


def test_keys_are_per_user(client, alice, bob, bearer):
    alices = submit(client, key="k1", headers=bearer(alice))
    bobs = submit(client, key="k1", headers=bearer(bob))
    # Alice again, over another token of hers: her key, her job.
    alices_again = submit(client, key="k1", headers=bearer(alice, name="other"))

    assert (alices.status_code, bobs.status_code, alices_again.status_code) == (201, 201, 200)
    assert alices.json()["id"] != bobs.json()["id"]
    assert alices_again.json()["id"] == alices.json()["id"]
    assert Job.objects.count() == 2


def test_a_key_is_answered_for_24_hours_then_makes_a_new_job(as_alice):
    with time_machine.travel(NOW, tick=False):
        first = submit(as_alice).json()["id"]
    with time_machine.travel(NOW + timedelta(hours=24) - timedelta(seconds=1), tick=False):
        assert submit(as_alice).json()["id"] == first
    with time_machine.travel(NOW + timedelta(hours=24), tick=False):
        later = submit(as_alice, {**BODY, "max_attempts": 5})  # even another request: the key is free

    assert later.status_code == 201
    assert later.json()["id"] != first
    assert IdempotencyKey.objects.get().job_id == Job.objects.get(id=later.json()["id"]).id


def test_a_lone_surrogate_in_the_parameters_is_compared_as_sent(as_alice):
    """A lone surrogate ("\\ud800" in the JSON) is valid JSON but no UTF-8: hashing the request
    answered a 500, where the same submit without a key makes its job (the text stored cleaned)."""
    body = '{"job_type": "test.echo", "parameters": {"note": "a\\ud800b"}}'
    other = '{"job_type": "test.echo", "parameters": {"note": "a\\udfffb"}}'

    def send(raw):
        return as_alice.post("/api/jobs", raw, content_type="application/json", headers={"Idempotency-Key": "k1"})

    first, again, changed = send(body), send(body), send(other)

    assert (first.status_code, again.status_code, changed.status_code) == (201, 200, 409)
    assert again.json()["id"] == first.json()["id"] == changed.json()["job_id"]
    assert Job.objects.get().parameters == {"note": "a\ufffdb"}


def test_a_refused_submit_keeps_no_key(as_alice):
    refused = submit(as_alice, {**BODY, "parameters": {"seconds": -1}})
    accepted = submit(as_alice)

    assert (refused.status_code, accepted.status_code) == (422, 201)


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "café", "tab\there", "bell\x07", "del\x7f"],
    ids=["empty", "256 characters", "not ascii", "tab", "control", "delete"],
)
def test_a_key_not_of_1_to_255_printable_ascii_characters_is_a_422_naming_the_header(as_alice, key):
    response = submit(as_alice, key=key)

    assert response.status_code == 422
    # The rule in words: it quoted the schema's regex, '^[\\x20-\\x7e]{1,255}$', to the user.
    rule = "must be 1 to 255 printable ASCII characters (space to ~), e.g. a UUID"
    assert response.json()["errors"] == [{"field": "Idempotency-Key", "message": rule}]
    assert response.json()["detail"] == f"invalid request: Idempotency-Key: {rule}"
    assert not Job.objects.exists()


def test_a_key_of_255_printable_characters_is_taken(as_alice):
    assert submit(as_alice, key="~ !" + "x" * 252).status_code == 201


def test_without_a_key_every_submit_makes_a_job(as_alice):
    assert [submit(as_alice, key=None).status_code for _ in range(2)] == [201, 201]
    assert Job.objects.count() == 2
    assert not IdempotencyKey.objects.exists()


def test_the_manager_refuses_a_key_without_its_owner():
    with pytest.raises(ValueError, match="owner"):
        job_manager.submit_job("test.echo", idempotency_key="k1")


@pytest.mark.django_db(transaction=True)
def test_two_submits_racing_with_one_key_make_one_job(postgres_only, alice, monkeypatch):
    """Both look the key up before either has written it; the second insert of the key waits
    for the first's commit, then rolls its own job back and answers the first's."""
    looked_up = threading.Barrier(2, timeout=10)
    first_lookup = threading.local()
    real_lookup = idempotency.replayed_job

    def lookup_then_wait_for_the_other(**kwargs):
        found = real_lookup(**kwargs)
        if not getattr(first_lookup, "done", False):
            first_lookup.done = True
            looked_up.wait()  # both missed it: both go on to insert it
        return found

    monkeypatch.setattr(manager, "replayed_job", lookup_then_wait_for_the_other)

    def submit_with_the_key():
        return job_manager.submit_job("test.echo", {}, submitted_by="alice", idempotency_key="k1", owner=alice)

    outcomes = at_once(submit_with_the_key, submit_with_the_key)

    assert [kind for kind, _ in outcomes] == ["ok", "ok"], outcomes
    jobs = [job for _, job in outcomes]
    assert jobs[0].id == jobs[1].id
    assert sorted(job.replayed for job in jobs) == [False, True]
    assert Job.objects.count() == 1
    assert JobExecutionLog.objects.count() == 1
    assert IdempotencyKey.objects.get().job_id == jobs[0].id
    assert connection.vendor == "postgresql"


def test_the_schema_documents_the_key_and_the_replay(as_alice):
    submit_operation = as_alice.get("/api/openapi.json").json()["paths"]["/api/jobs"]["post"]

    (header,) = [p for p in submit_operation["parameters"] if p["in"] == "header"]
    assert (header["name"], header["required"]) == ("Idempotency-Key", False)
    assert header["schema"]["anyOf"][0] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": idempotency.IDEMPOTENCY_KEY_PATTERN,
    }
    assert "Idempotent-Replayed" in submit_operation["responses"]["200"]["headers"]
    assert submit_operation["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/IdempotencyConflictOut"
    )
