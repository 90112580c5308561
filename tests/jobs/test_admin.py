import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django_q.models import OrmQ

from jobs.admin import MAX_COUNTED_ROWS
from jobs.manager import job_manager
from jobs.models import Job, JobStatus, JobTypePause
from jobs.registry import registered_job_types
from tests.explain import plan
from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def staff(**kwargs):
    user = UserFactory(**kwargs)
    user.is_staff = True
    user.save()
    return user


def test_operators_cancel_jobs_from_the_admin_list(client):
    client.force_login(staff(username="ops", permissions=["jobs.view_job", "jobs.change_job"]))
    queued, done = JobFactory(), JobFactory(completed=True)
    response = client.post(
        reverse("admin:jobs_job_changelist"),
        {"action": "cancel_jobs", "_selected_action": [queued.id, done.id]},
        follow=True,
    )
    assert response.status_code == 200
    queued.refresh_from_db()
    assert queued.status == JobStatus.CANCELLED
    messages = [str(m) for m in response.context["messages"]]
    assert "Cancelled 1 job." in messages
    assert any("only queued, running or retrying jobs can be cancelled" in m for m in messages)


def test_one_click_acts_on_a_batch_of_the_jobs_selected_and_says_what_is_left(client, monkeypatch):
    # "Select all" over thousands of jobs would outlast the request; finished ones are counted, not
    # each reported (they were, one message per job).
    monkeypatch.setattr("jobs.admin.MAX_ACTION_ROWS", 2)
    client.force_login(staff(username="ops", permissions=["jobs.view_job", "jobs.change_job"]))
    queued = JobFactory.create_batch(3)
    JobFactory.create_batch(2, completed=True)
    every_one = {"action": "cancel_jobs", "_selected_action": [queued[0].id], "select_across": "1"}

    first = client.post(reverse("admin:jobs_job_changelist"), every_one, follow=True)
    second = client.post(reverse("admin:jobs_job_changelist"), every_one, follow=True)

    assert [str(m) for m in first.context["messages"]] == [
        "Cancelled 2 jobs.",
        "1 more selected job not touched yet: one click acts on 2 at most; select them and run the action again.",
        "2 selected jobs left as they are: only queued, running or retrying jobs can be cancelled.",
    ]
    assert [str(m) for m in second.context["messages"]] == [
        "Cancelled 1 job.",
        "4 selected jobs left as they are: only queued, running or retrying jobs can be cancelled.",
    ]
    assert {job.status for job in Job.objects.filter(id__in=[job.id for job in queued])} == {JobStatus.CANCELLED}


def test_viewers_see_jobs_but_cannot_act(client):
    client.force_login(staff(username="viewer", permissions=["jobs.view_job"]))
    job = JobFactory(parameters={"note": "<script>alert(1)</script>"})
    listing = client.get(reverse("admin:jobs_job_changelist"))
    assert listing.status_code == 200
    assert "cancel_jobs" not in listing.content.decode()
    client.post(reverse("admin:jobs_job_changelist"), {"action": "cancel_jobs", "_selected_action": [job.id]})
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    detail = client.get(reverse("admin:jobs_job_change", args=[job.id])).content.decode()
    assert "<script>alert(1)</script>" not in detail and "&lt;script&gt;" in detail


def test_a_jobs_admin_page_links_its_dashboard_page(client):
    client.force_login(staff(username="viewer", permissions=["jobs.view_job"]))
    job = JobFactory(completed=True)

    page = client.get(reverse("admin:jobs_job_change", args=[job.id])).content.decode()
    assert f'<a href="/jobs/{job.id}/" class="viewsitelink">View on dashboard</a>' in page


def test_admin_search_finds_a_job_by_the_short_id_the_dashboard_shows(client):
    client.force_login(staff(username="viewer", permissions=["jobs.view_job"]))
    wanted = JobFactory(id=uuid.UUID("63644131-0000-4000-8000-000000000001"), completed=True)
    JobFactory(id=uuid.UUID("63644132-0000-4000-8000-000000000001"), job_type="imports.candidates")
    JobFactory(id=uuid.UUID("ab644131-0000-4000-8000-000000000001"))

    def found(term):
        response = client.get(reverse("admin:jobs_job_changelist"), {"q": term})
        return sorted(str(job.id) for job in response.context["cl"].result_list)

    for term in ("63644131", "6364-4131", "63644131-0000", " 63644131 ", "63644131".upper(), str(wanted.id)):
        assert found(term) == [str(wanted.id)], term
    assert len(found("6364")) == 2  # four hex digits are a prefix too
    assert found("636") == []  # fewer are not: "636" is searched as text only
    assert len(found("imports.candidates")) == 1  # the other search fields still work
    assert found("63644131-zz") == []


def test_the_job_list_counts_its_jobs_only_as_far_as_it_pages(client, monkeypatch):
    # A long history: admin's COUNT(*) and a DISTINCT of the job types and of the error classes
    # read every job on each page (0.25 s at 200,000). Here the count stops at MAX_COUNTED_ROWS,
    # the filters list the registered job types and the four error classes.
    monkeypatch.setattr("jobs.admin.MAX_COUNTED_ROWS", 2)
    client.force_login(staff(username="viewer", permissions=["jobs.view_job"]))
    JobFactory.create_batch(3)

    response = client.get(reverse("admin:jobs_job_changelist"))

    assert response.context["cl"].result_count == 2
    assert len(response.context["cl"].result_list) == 3  # the page itself is not cut
    assert "2 or more jobs (counted no further)" in response.content.decode()
    cl = response.context["cl"]
    choices = {spec.title: [choice["display"] for choice in spec.choices(cl)][1:] for spec in cl.filter_specs}
    assert choices["job type"] == registered_job_types()
    assert choices["error class"] == ["Transient", "Configuration", "Data", "System"]


def test_a_short_job_list_is_counted_in_full(client):
    client.force_login(staff(username="viewer", permissions=["jobs.view_job"]))
    JobFactory.create_batch(3)
    page = client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert "3 jobs" in page and "or more" not in page


def test_the_job_list_filters_by_type_and_error_class_even_an_unregistered_type(client):
    client.force_login(staff(username="viewer", permissions=["jobs.view_job"]))
    gone = JobFactory(job_type="reports.retired")  # a job type no longer in the code
    data = JobFactory(error_class="data", status=JobStatus.FAILED)
    JobFactory(error_class="transient", status=JobStatus.FAILED)

    def listed(**params):
        return [job.id for job in client.get(reverse("admin:jobs_job_changelist"), params).context["cl"].result_list]

    assert listed(job_type="reports.retired") == [gone.id]
    assert listed(error_class="data") == [data.id]


def test_the_job_list_runs_no_query_over_every_job(client, django_assert_max_num_queries):
    client.force_login(staff(username="viewer", permissions=["jobs.view_job"]))
    for jobs in (3, 30):  # the same queries however many jobs
        JobFactory.create_batch(jobs - Job.objects.count())
        # session, user, permissions, the page's count and rows
        with django_assert_max_num_queries(5) as captured:
            response = client.get(reverse("admin:jobs_job_changelist"))
        assert response.status_code == 200
        queries = [query["sql"] for query in captured.captured_queries]
        assert not [sql for sql in queries if "DISTINCT" in sql]
        counts = [sql for sql in queries if "COUNT(*)" in sql]
        assert len(counts) == 1 and f"LIMIT {MAX_COUNTED_ROWS}" in counts[0]


def test_the_job_list_is_newest_submitted_first_however_the_jobs_move(client, django_assert_max_num_queries):
    """A stable order: by updated_at, a running job's every progress report moved it to the top
    (and between pages while an operator paged through them)."""
    client.force_login(staff(username="viewer", permissions=["jobs.view_job"]))
    oldest, middle, newest = (
        JobFactory(created_at=NOW - timedelta(minutes=minutes), updated_at=NOW - timedelta(seconds=seconds))
        for minutes, seconds in ((30, 1), (20, 60), (10, 120))  # the oldest reported progress last
    )

    with django_assert_max_num_queries(5):
        response = client.get(reverse("admin:jobs_job_changelist"))

    assert [job.id for job in response.context["cl"].result_list] == [newest.id, middle.id, oldest.id]


def job_list_queries(client, django_assert_max_num_queries, **params) -> dict[str, str]:
    """The SQL of the job list's count and page, as admin runs them for `params`."""
    with django_assert_max_num_queries(5) as captured:
        assert client.get(reverse("admin:jobs_job_changelist"), params).status_code == 200
    (count,) = [query["sql"] for query in captured.captured_queries if "COUNT(*)" in query["sql"]]
    (page,) = [query["sql"] for query in captured.captured_queries if '"jobs"."parameters"' in query["sql"]]
    return {"count": count, "page": page}


@pytest.mark.parametrize(
    "params",
    [{}, {"status": "failed"}, {"job_type": "ai_matching"}, {"error_class": "configuration"}],
    ids=["all", "status", "job_type", "error_class"],
)
def test_the_job_list_and_its_count_are_read_from_indexes(client, postgres_only, django_assert_max_num_queries, params):
    """Drill (EXPLAIN, 200,000 jobs on Postgres): the list sorted every job by updated_at on each
    page (245 ms; 66-119 ms filtered), and a filter by error class was counted by reading every
    job (53 ms for the 2,922 of a class). From jobs_created_idx and jobs_error_class_idx: 0.2-3 ms."""
    client.force_login(staff(username="viewer", permissions=["jobs.view_job"]))
    JobFactory.create_batch(3, status=JobStatus.FAILED, error_class="configuration")

    for name, sql in job_list_queries(client, django_assert_max_num_queries, **params).items():
        explained = plan(sql)
        assert "Sort" not in explained and "Seq Scan" not in explained, (name, explained)


def test_paused_job_types_are_listed_in_the_admin_and_resumed_from_it(client, django_capture_on_commit_callbacks):
    """Resumed by the action, as the Jobs page does (its held jobs are enqueued again), never by
    deleting the row: that would leave them waiting for the lost-job sweep."""
    held = [JobFactory(job_type="imports.candidates") for _ in range(2)]
    job_manager.pause_job_type_sync("imports.candidates", by="bob", reason="<b>ATS down</b>")
    client.force_login(staff(username="ops", permissions=["jobs.view_job", "jobs.change_job"]))

    listing = client.get(reverse("admin:jobs_jobtypepause_changelist")).content.decode()
    assert '<td class="field-held">2</td>' in listing
    assert "&lt;b&gt;ATS down&lt;/b&gt;" in listing and "<b>ATS down</b>" not in listing
    assert "delete_selected" not in listing
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:jobs_jobtypepause_changelist"),
            {"action": "resume_job_types", "_selected_action": ["imports.candidates"]},
            follow=True,
        )

    assert "Resumed imports.candidates: 2 held jobs queued again." in [str(m) for m in response.context["messages"]]
    assert not JobTypePause.objects.exists()
    assert {task.task["args"][0] for task in OrmQ.objects.all()} >= {str(job.id) for job in held}


def test_viewers_see_the_paused_job_types_in_the_admin_but_cannot_resume_them(client):
    JobFactory(job_type="imports.candidates")
    job_manager.pause_job_type_sync("imports.candidates", by="bob")
    client.force_login(staff(username="viewer", permissions=["jobs.view_job"]))

    listing = client.get(reverse("admin:jobs_jobtypepause_changelist"))
    assert listing.status_code == 200 and "resume_job_types" not in listing.content.decode()
    client.post(
        reverse("admin:jobs_jobtypepause_changelist"),
        {"action": "resume_job_types", "_selected_action": ["imports.candidates"]},
    )
    assert JobTypePause.objects.filter(job_type="imports.candidates").exists()
    client.force_login(staff(username="nobody", permissions=[]))
    assert client.get(reverse("admin:jobs_jobtypepause_changelist")).status_code == 403


def test_resuming_from_a_stale_admin_list_says_nothing_was_left_to_resume(client):
    JobFactory(job_type="imports.candidates")
    job_manager.pause_job_type_sync("imports.candidates", by="bob")
    client.force_login(staff(username="ops", permissions=["jobs.view_job", "jobs.change_job"]))
    job_manager.resume_job_type_sync("imports.candidates", by="carol")  # meanwhile, elsewhere

    response = client.post(
        reverse("admin:jobs_jobtypepause_changelist"),
        {"action": "resume_job_types", "_selected_action": ["imports.candidates"]},
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["Nothing resumed: not paused any more (someone resumed them?)."]


def test_controlling_jobs_without_seeing_them_shows_no_job_in_the_admin(client):
    """As on the dashboard and the API: jobs.change_job presupposes jobs.view_job, which admin's
    own rule ("view or change") would not ask for."""
    client.force_login(staff(username="blind", permissions=["jobs.change_job"]))
    job = JobFactory(parameters={"secret": "s3cr3t"})

    assert client.get(reverse("admin:jobs_job_changelist")).status_code == 403
    assert client.get(reverse("admin:jobs_job_change", args=[job.id])).status_code == 403
    client.post(reverse("admin:jobs_job_changelist"), {"action": "cancel_jobs", "_selected_action": [job.id]})
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_a_job_retried_by_someone_else_while_the_action_runs_is_reported_once(client):
    """Another operator retried the job after the action listed it: its retry is refused, and
    said once, not also counted among the jobs "left as they are" (a race drill saw both)."""
    from django.db import connection

    client.force_login(staff(username="ops", permissions=["jobs.view_job", "jobs.change_job"]))
    job = JobFactory(failed=True, attempts=1)
    someone_else = []

    def retried_by_bob_once_listed(execute, sql, params, many, context):
        # Just before the action counts the jobs it will not act on, after it listed the others.
        if "COUNT(" in sql and "NOT (" in sql and not someone_else:
            someone_else.append(job_manager.retry_job_sync(job.id, by="bob"))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(retried_by_bob_once_listed):
        response = client.post(
            reverse("admin:jobs_job_changelist"), {"action": "retry_jobs", "_selected_action": [job.id]}, follow=True
        )

    assert someone_else == [True]
    assert [str(m) for m in response.context["messages"]] == [
        f"job {job.id} is queued: only failed, cancelled or retrying jobs can be retried"
    ]
