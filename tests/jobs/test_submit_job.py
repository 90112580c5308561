import pytest
from django.core.management import CommandError, call_command
from django_q.models import OrmQ

from jobs.manager import job_manager
from jobs.models import Job, JobStatus
from jobs.payloads import MAX_JSON_DEPTH
from jobs.registry import InvalidJobParameters, UnknownJobType
from monitoring.models import EventType

pytestmark = pytest.mark.django_db


def test_submit_creates_the_job_and_its_queued_event_and_enqueues_after_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = job_manager.submit_job("demo.sleep", {"seconds": 2}, submitted_by="alice")
        assert OrmQ.objects.count() == 0  # not before the job row is committed

    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.parameters == {"seconds": 2.0, "steps": 10}  # defaults filled in
    assert job.max_attempts == 3
    assert job.submitted_by == "alice"
    assert list(job.logs.values_list("event_type", "status")) == [(EventType.QUEUED, "queued")]
    assert len(callbacks) == 1
    assert OrmQ.objects.count() == 1


def test_max_attempts_can_be_chosen_per_job():
    assert job_manager.submit_job("demo.sleep", {}, max_attempts=5).max_attempts == 5
    with pytest.raises(InvalidJobParameters, match="max_attempts: must be between 1 and 100"):
        job_manager.submit_job("demo.sleep", {}, max_attempts=0)


def test_unknown_job_type_names_the_known_ones():
    with pytest.raises(UnknownJobType, match=r"unknown job type 'nope'; known job types: .*ai_matching.*demo\.fail"):
        job_manager.submit_job("nope", {})
    assert not Job.objects.exists()


def test_invalid_parameters_name_each_field():
    with pytest.raises(InvalidJobParameters) as excinfo:
        job_manager.submit_job("demo.fail", {"error_class": "cosmic", "fail_times": -1, "extra": 1})
    fields = {error["field"] for error in excinfo.value.errors}
    assert fields == {"parameters.error_class", "parameters.fail_times", "parameters.extra"}
    assert "parameters.error_class: Input should be 'transient', 'configuration', 'data' or 'system'" in str(
        excinfo.value
    )


def test_parameters_must_be_an_object():
    with pytest.raises(InvalidJobParameters, match="parameters: must be a JSON object"):
        job_manager.submit_job("test.echo", ["a", "list"])


def test_oversized_or_too_deep_parameters_are_refused():
    with pytest.raises(InvalidJobParameters, match="bytes of JSON, more than the 262144 allowed"):
        job_manager.submit_job("test.echo", {"blob": "x" * 300_000})
    deep = current = {}
    for _ in range(MAX_JSON_DEPTH + 5):
        current["next"] = current = {}
    with pytest.raises(InvalidJobParameters, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        job_manager.submit_job("test.echo", deep)


def test_hostile_text_is_stored_as_given_except_what_postgres_cannot_hold():
    hostile = {"html": "<script>alert(1)</script>", "sql": "'; DROP TABLE jobs; --", "nul": "a\x00b", "lone": "\ud800"}
    job = job_manager.submit_job("test.echo", hostile)
    job.refresh_from_db()
    assert job.parameters["html"] == "<script>alert(1)</script>"
    assert job.parameters["sql"] == "'; DROP TABLE jobs; --"
    assert job.parameters["nul"] == "a\ufffdb"
    assert job.parameters["lone"] == "\ufffd"


def test_submit_job_command_prints_the_id(capsys):
    call_command("submit_job", "demo.fail", "--params", '{"error_class": "data", "fail_times": 1}')
    job_id = capsys.readouterr().out.strip()
    assert Job.objects.get(id=job_id).parameters == {"error_class": "data", "fail_times": 1}


def test_submit_job_command_explains_bad_input():
    with pytest.raises(CommandError, match="--params is not valid JSON"):
        call_command("submit_job", "demo.sleep", "--params", "{nope")
    with pytest.raises(CommandError, match="parameters.seconds"):
        call_command("submit_job", "demo.sleep", "--params", '{"seconds": "soon"}')
