"""The real-time job list: filters in the URL, a polled table body, paginated, bounded."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from html import unescape

import pytest
import time_machine
from django.utils import timezone

from jobs.models import Job, JobStatus
from tests.factories import JobFactory
from tests.monitoring.views.conftest import htmx

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
PINNED_NOW = "2026-11-29T03%3A00%3A00.000000Z"  # NOW as the pager's `until`, in a link


def listed(response):
    return [job.id for job in response.context["page"].object_list]


@time_machine.travel(NOW, tick=False)
def test_lists_active_jobs_with_status_progress_attempt_age_and_last_event(alice_client):
    job = JobFactory(
        job_type="ai_matching",
        running=True,
        progress=42,
        attempts=2,
        message="scored 42/100 candidates",
        created_at=NOW - timedelta(minutes=3, seconds=5),
        updated_at=NOW - timedelta(seconds=2),
    )
    JobFactory(completed=True, finished_at=NOW)

    response = alice_client.get("/jobs/")

    assert response.status_code == 200
    assert listed(response) == [job.id]
    row = response.content.decode().split('<tbody role="rowgroup" id="job-rows"')[1]
    assert f'href="/jobs/{job.id}/"' in row
    assert '<span class="badge-symbol" aria-hidden="true">▶</span> running' in row  # symbol and word, not colour only
    assert '<progress max="100" value="42"' in row and "42%" in row
    assert "2/3" in row
    assert "3m 05s" in row
    assert "scored 42/100 candidates" in row and "2.0 s ago" in row


def test_a_queued_job_shows_the_attempt_it_waits_to_run(alice_client):
    """`attempts` counts the attempts started: a new job read 0/3, one retried by hand 1/4."""
    new = JobFactory(status=JobStatus.QUEUED, attempts=0, max_attempts=3)
    retried = JobFactory(status=JobStatus.QUEUED, attempts=1, max_attempts=4)

    rows = alice_client.get("/jobs/", headers=htmx("job-rows")).content.decode()

    attempt = {
        job.id: rows.split(f'href="/jobs/{job.id}/"')[1].split('data-label="Attempt">')[1][:3] for job in (new, retried)
    }
    assert attempt == {new.id: "1/3", retried.id: "2/4"}


@time_machine.travel(NOW, tick=False)
def test_a_waiting_retry_says_when_its_next_attempt_is(alice_client):
    JobFactory(status=JobStatus.RETRYING, attempts=1, next_attempt_at=NOW + timedelta(seconds=30))
    assert "next attempt in 30 s" in alice_client.get("/jobs/").content.decode()


@time_machine.travel(NOW, tick=False)
def test_an_overdue_retry_says_how_late_it_is_and_asks_whether_a_cluster_runs(
    alice_client, is_postgres, django_assert_max_num_queries
):
    """Drill: the cluster paused while a job waited to retry; 2.5 minutes later the list said
    "next attempt in 0.0 s" and went on saying it."""
    JobFactory(status=JobStatus.RETRYING, attempts=1, next_attempt_at=NOW - timedelta(minutes=2, seconds=30))
    JobFactory(status=JobStatus.RETRYING, attempts=1, next_attempt_at=NOW - timedelta(seconds=1))  # being dispatched

    with django_assert_max_num_queries((2 if is_postgres else 3) + 3):  # login, count, rows, paused types: no more
        page = alice_client.get("/jobs/?status=retrying").content.decode()

    assert "⚠ next attempt overdue by 2m 30s" in page
    assert "python manage.py qcluster" in page.split("⚠ next attempt overdue")[0].rsplit("<span", 1)[1]  # its title
    assert "next attempt due now" in page
    assert "in 0.0 s" not in page


@time_machine.travel(NOW, tick=False)
def test_a_running_attempt_near_its_timeout_or_long_silent_is_flagged_in_words(
    alice_client, is_postgres, django_assert_max_num_queries
):
    """A job at 0 % for 8 minutes looked like any healthy one until it timed out at 600 s."""

    def running(started_ago: timedelta, reported_ago: timedelta):
        started = NOW - started_ago
        return JobFactory(job_type="ai_matching", running=True, started_at=started, updated_at=NOW - reported_ago)

    stuck = running(timedelta(minutes=8), timedelta(minutes=8))  # ai_matching: a 600 s timeout
    busy = running(timedelta(minutes=8, seconds=30), timedelta(seconds=2))
    quiet = running(timedelta(minutes=3), timedelta(minutes=3))
    fine = running(timedelta(minutes=1), timedelta(seconds=5))

    with django_assert_max_num_queries((2 if is_postgres else 3) + 3):  # login, count, rows, paused types
        page = alice_client.get("/jobs/").content.decode()

    def row(job):
        return page.split(f'href="/jobs/{job.id}/"')[1].split("</tr>")[0]

    assert "⚠ 80 % of its 10m 00s timeout used" in row(stuck) and "⚠ no progress report for 8m 00s" in row(stuck)
    assert "⚠ 85 % of its 10m 00s timeout used" in row(busy) and "no progress report" not in row(busy)
    assert "⚠ no progress report for 3m 00s" in row(quiet) and "timeout used" not in row(quiet)
    assert "⚠" not in row(fine)


@time_machine.travel(NOW, tick=False)
def test_a_cancel_request_shows_its_age_beside_what_the_job_last_said(alice_client):
    # A stuck job does not take the request up: the row keeps showing its silence.
    JobFactory(
        job_type="ai_matching",
        running=True,
        started_at=NOW - timedelta(minutes=4),
        updated_at=NOW - timedelta(minutes=4),
        message="scored 10/100 candidates",
        cancel_requested_at=NOW - timedelta(minutes=2),
    )

    row = alice_client.get("/jobs/").content.decode().split('<tbody role="rowgroup" id="job-rows"')[1]

    assert "cancel requested 2m 00s ago" in row
    assert "scored 10/100 candidates" in row and "4m 00s ago" in row
    assert "⚠ no progress report for 4m 00s" in row


@time_machine.travel(NOW, tick=False)
def test_a_worker_late_with_its_heartbeats_is_flagged_before_the_sweep_takes_the_job_back(alice_client, settings):
    """A worker killed mid-job: for the 30 s before the sweep, its job looked as alive as any."""
    settings.JOBS = {**settings.JOBS, "HEARTBEAT_INTERVAL": 5.0, "STALE_AFTER": 30.0}
    orphan = JobFactory(running=True, started_at=NOW - timedelta(minutes=1), updated_at=NOW - timedelta(seconds=20))
    orphan.heartbeat_at = NOW - timedelta(seconds=18)
    orphan.save()
    alive = JobFactory(running=True, started_at=NOW - timedelta(minutes=1), updated_at=NOW - timedelta(seconds=20))

    page = alice_client.get("/jobs/").content.decode()

    def row(job):
        return page.split(f'href="/jobs/{job.id}/"')[1].split("</tr>")[0]

    assert "⚠ no heartbeat for 18 s" in row(orphan)
    assert "taken back and retried once the last heartbeat is 30 s old" in row(orphan)
    assert "⚠" not in row(alive)


@time_machine.travel(NOW, tick=False)
def test_a_late_heartbeat_in_the_list_says_when_the_sweep_will_not_retry_the_job(alice_client, settings):
    settings.JOBS = {**settings.JOBS, "HEARTBEAT_INTERVAL": 5.0, "STALE_AFTER": 30.0}
    late = {"running": True, "started_at": NOW - timedelta(minutes=1), "updated_at": NOW - timedelta(seconds=20)}
    cancelled = JobFactory(**late, heartbeat_at=NOW - timedelta(seconds=18), cancel_requested_at=NOW)
    last = JobFactory(**late, heartbeat_at=NOW - timedelta(seconds=18), attempts=3, max_attempts=3)

    page = alice_client.get("/jobs/").content.decode()

    def row(job):
        return page.split(f'href="/jobs/{job.id}/"')[1].split("</tr>")[0]

    assert "taken back and the job cancelled once the last heartbeat is 30 s old" in row(cancelled)
    assert "taken back and the job fails (it was its last attempt) once the last heartbeat is 30 s old" in row(last)
    assert "retried" not in row(cancelled) + row(last)


@time_machine.travel(NOW, tick=False)
def test_needing_attention_lists_only_the_running_jobs_the_list_flags(
    alice_client, is_postgres, django_assert_max_num_queries
):
    """Flagged jobs are the least recently updated: among 200 running they were on the last page."""
    stuck = JobFactory(
        job_type="ai_matching",
        running=True,
        started_at=NOW - timedelta(minutes=5),
        updated_at=NOW - timedelta(minutes=5),
    )
    JobFactory.create_batch(3, running=True, started_at=NOW - timedelta(minutes=5), updated_at=NOW)
    JobFactory(status=JobStatus.QUEUED, updated_at=NOW - timedelta(hours=1))

    with django_assert_max_num_queries((2 if is_postgres else 3) + 3):  # login, count, rows, paused types
        response = alice_client.get("/jobs/?attention=1")

    assert listed(response) == [stuck.id]
    page = response.content.decode()
    assert "1–1 of <strong>1</strong> running job needing attention" in page
    assert '<input type="checkbox" name="attention" value="1" checked>' in page
    assert 'hx-get="/jobs/?attention=1"' in page  # the poll keeps the filter


def test_when_no_job_needs_attention_the_list_says_so(alice_client):
    JobFactory(running=True)
    page = alice_client.get("/jobs/?attention=1").content.decode()
    assert "No running job needs attention: each has reported progress recently" in page


def test_attention_applies_to_the_active_list_only(alice_client):
    response = alice_client.get("/jobs/?view=finished&attention=1")
    assert response.status_code == 400
    assert "(<code>attention</code>): only running jobs need attention" in response.content.decode()
    refused = alice_client.get("/jobs/?attention=yes")
    assert refused.status_code == 400
    assert "(<code>attention</code>): yes is neither on (1 or true) nor off (0, false or nothing)" in (
        refused.content.decode()
    )


def test_flags_are_spelled_as_the_api_spells_them_too(alice_client):
    """`?attention=true` (the API's spelling) was a 400 on the dashboard, which wanted 1."""
    flagged = JobFactory(running=True, heartbeat_at=timezone.now() - timedelta(minutes=5))
    JobFactory(running=True)
    for on in ("1", "true"):
        assert [job.id for job in alice_client.get(f"/jobs/?attention={on}").context["page"].object_list] == [
            flagged.id
        ]
    for off in ("0", "false", ""):
        assert len(alice_client.get(f"/jobs/?attention={off}").context["page"].object_list) == 2
    # The checkbox says so too, so the next filter change keeps it (it was unticked for "true").
    assert (
        '<input type="checkbox" name="attention" value="1" checked>'
        in alice_client.get("/jobs/?attention=true").content.decode()
    )


def test_filters_by_type_status_and_id_and_keeps_them_in_the_polling_url(alice_client):
    wanted = JobFactory(job_type="ai_matching", running=True)
    JobFactory(job_type="ai_matching")
    JobFactory(job_type="demo.sleep", running=True)

    response = alice_client.get("/jobs/?job_type=ai_matching&status=running")

    assert listed(response) == [wanted.id]
    page = response.content.decode()
    assert 'hx-get="/jobs/?job_type=ai_matching&amp;status=running"' in page
    assert '<option value="ai_matching" selected>' in page and '<option value="running" selected>' in page
    assert listed(alice_client.get(f"/jobs/?q={str(wanted.id)[:8]}")) == [wanted.id]


def test_a_poll_returns_just_the_table_body_and_the_counts(alice_client):
    JobFactory(running=True)
    partial = alice_client.get("/jobs/?status=running", headers=htmx("job-rows")).content.decode()

    assert "<html" not in partial and "<thead" not in partial
    assert partial.lstrip().startswith('<tbody role="rowgroup" id="job-rows" hx-get="/jobs/?status=running"')
    assert "every 2s [document.visibilityState === 'visible']" in partial
    assert "every 30s [document.visibilityState !== 'visible']" in partial  # slower while the tab is hidden
    assert '<div id="job-list-meta" class="list-meta" hx-swap-oob="true">' in partial


def test_changing_a_filter_returns_the_list_section(alice_client):
    partial = alice_client.get("/jobs/?status=queued", headers=htmx("job-list")).content.decode()
    assert partial.lstrip().startswith('<section id="job-list">') and '<thead role="rowgroup">' in partial
    assert "hx-swap-oob" not in partial


def test_recently_finished_jobs_within_the_chosen_window(alice_client):
    with time_machine.travel(NOW, tick=False):
        recent = JobFactory(failed=True, finished_at=NOW - timedelta(minutes=30), message="<b>boom</b>")
        JobFactory(completed=True, finished_at=NOW - timedelta(hours=3))
        JobFactory(running=True)

        last_hour = alice_client.get("/jobs/?view=finished&window=1h")
        last_day = alice_client.get("/jobs/?view=finished")

    assert listed(last_hour) == [recent.id]
    assert len(listed(last_day)) == 2
    page = last_hour.content.decode()
    assert "30m 00s ago" in page
    assert "&lt;b&gt;boom&lt;/b&gt;" in page and "<b>boom</b>" not in page


def test_bad_filters_are_a_400_naming_the_field(alice_client):
    response = alice_client.get("/jobs/?view=active&q=<script>&status=completed&page=0")
    assert response.status_code == 400
    page = response.content.decode()
    assert "(<code>q</code>): a job id is hex digits and dashes" in page
    assert "(<code>status</code>): &#x27;completed&#x27; is not one of the active statuses" in page
    assert "(<code>page</code>):" in page
    assert "<script>" not in page.split('<main id="main" tabindex="-1">')[1]
    assert 'id="job-rows"' not in page  # nothing polls a bad query


def test_jobs_of_a_type_no_longer_registered_are_still_listed(alice_client):
    """A deploy renamed or removed the type while its jobs were queued: they must still be found
    (the overview's "Active jobs by type" links here)."""
    queued = JobFactory(job_type="audit.transient")
    failed = JobFactory(job_type="audit.transient", status=JobStatus.FAILED, finished_at=timezone.now())

    active = alice_client.get("/jobs/?job_type=audit.transient")
    finished = alice_client.get("/jobs/?view=finished&job_type=audit.transient")

    assert active.status_code == 200 and listed(active) == [queued.id]
    assert finished.status_code == 200 and listed(finished) == [failed.id]
    assert '<option value="audit.transient" selected>' in finished.content.decode()
    assert '<option value="demo.sleep">' in finished.content.decode()  # the registered ones are still offered
    markup = alice_client.get("/jobs/?job_type=<b>x</b>")  # a name like any other, shown escaped
    assert markup.status_code == 200 and listed(markup) == []
    assert "<b>x</b>" not in markup.content.decode() and "&lt;b&gt;x&lt;/b&gt;" in markup.content.decode()


def test_a_hand_made_poll_with_bad_filters_gets_the_filter_errors(alice_client):
    response = alice_client.get("/jobs/?page=abc", headers=htmx("job-rows"))
    assert response.status_code == 400
    assert "(<code>page</code>):" in response.content.decode()


def test_empty_states_say_what_to_do(alice_client):
    empty = alice_client.get("/jobs/").content.decode()
    assert "Submit one with <code>python manage.py submit_job demo.sleep</code>" in empty
    filtered = alice_client.get("/jobs/?status=running").content.decode()
    assert "No active jobs match these filters." in filtered and "Clear filters" in filtered


def test_searching_the_id_of_a_finished_job_among_active_ones_points_at_it(alice_client):
    job = JobFactory(completed=True)
    page = alice_client.get(f"/jobs/?q={str(job.id).upper()}", headers=htmx("job-list")).content.decode()
    assert f'<a href="/jobs/{job.id}/"><strong>{job.job_type}</strong> <code>{job.id}</code></a>' in page
    assert "completed" in page


def test_the_short_id_shown_everywhere_finds_a_job_whatever_its_status(alice_client):
    finished = JobFactory(completed=True)
    short = str(finished.id)[:8]

    opened = alice_client.get(f"/jobs/?q={short}")  # a shared link, a reload, no JavaScript
    typed = alice_client.get(f"/jobs/?q={short}", headers=htmx("job-list"))  # never leave while typing

    assert opened.status_code == 302 and opened["Location"] == f"/jobs/{finished.id}/"
    assert typed.status_code == 200
    assert f'href="/jobs/{finished.id}/"' in typed.content.decode()


def test_a_short_id_shared_by_several_jobs_lists_them_all(alice_client):
    first = JobFactory(id=uuid.UUID("cffc97a2-0000-4000-8000-000000000001"), failed=True)
    second = JobFactory(id=uuid.UUID("cffc97a2-0000-4000-8000-000000000002"), job_type="<b>odd</b>", completed=True)
    JobFactory(id=uuid.UUID("cffc97a3-0000-4000-8000-000000000000"), completed=True)

    response = alice_client.get("/jobs/?q=cffc97a2")

    assert response.status_code == 200
    page = response.content.decode()
    assert "but these jobs do:" in page
    assert f'href="/jobs/{first.id}/"' in page and f'href="/jobs/{second.id}/"' in page
    assert "cffc97a3" not in page
    assert "&lt;b&gt;odd&lt;/b&gt;" in page and "<b>odd</b>" not in page


def test_a_short_id_of_an_active_job_filters_the_list_as_before(alice_client):
    running = JobFactory(running=True)
    response = alice_client.get(f"/jobs/?q={str(running.id)[:8]}")
    assert response.status_code == 200 and listed(response) == [running.id]


def test_an_id_nobody_has_says_so(alice_client):
    page = alice_client.get("/jobs/?q=0000000000").content.decode()
    assert "No job has an id starting with <code>0000000000</code>." in page


def test_long_lists_are_paginated_and_pages_keep_the_filters(alice_client):
    JobFactory.create_batch(51, job_type="demo.sleep")
    first = alice_client.get("/jobs/?job_type=demo.sleep")
    assert len(listed(first)) == 50
    assert "1–50 of <strong>51</strong> active jobs" in first.content.decode()
    assert 'href="?job_type=demo.sleep&amp;page=2"' in first.content.decode()
    second = alice_client.get("/jobs/?job_type=demo.sleep&page=2")
    assert len(listed(second)) == 1
    assert alice_client.get("/jobs/?page=99").context["page"].number == 2  # jobs left: the last page


@time_machine.travel(NOW, tick=False)
def test_finished_jobs_page_without_counting_the_whole_window(alice_client):
    JobFactory.create_batch(51, completed=True, finished_at=NOW)
    first = alice_client.get("/jobs/?view=finished").content.decode()
    assert "1–50 of the jobs finished in the last 24h" in first and "page 1</span>" in first
    assert f'href="?view=finished&amp;page=2&amp;until={PINNED_NOW}"' in first
    assert len(listed(alice_client.get("/jobs/?view=finished&page=2"))) == 1
    too_deep = alice_client.get("/jobs/?view=finished&page=21")
    assert too_deep.status_code == 400
    assert "(<code>page</code>): at most 20 pages of finished jobs" in too_deep.content.decode()


@time_machine.travel(NOW, tick=False)
def test_the_last_finished_page_listed_says_more_follow_instead_of_linking_to_a_page_it_refuses(alice_client):
    Job.objects.bulk_create(JobFactory.build_batch(20 * 50 + 1, completed=True, finished_at=NOW))
    page_19 = alice_client.get("/jobs/?view=finished&page=19").content.decode()
    assert (
        f'href="?view=finished&amp;page=20&amp;until={PINNED_NOW}"' in page_19 and "narrow the filters" not in page_19
    )
    page_20 = alice_client.get("/jobs/?view=finished&page=20").content.decode()
    assert len(listed(alice_client.get("/jobs/?view=finished&page=20"))) == 50
    assert "page=21" not in page_20
    assert "more past page 20, the last one listed: narrow the filters" in page_20


def test_a_page_past_the_end_says_so_and_links_to_the_first(alice_client):
    """Jobs finished in the window, but fewer than page 20 needs: not "No job finished"."""
    JobFactory.create_batch(3, completed=True, finished_at=datetime.now(UTC))

    for response in (
        alice_client.get("/jobs/?view=finished&page=20"),
        alice_client.get("/jobs/?view=finished&page=20", headers=htmx("job-rows")),  # its poll
    ):
        page = response.content.decode()
        assert response.status_code == 200 and listed(response) == []
        assert "Page 20 is past the end of this list." in page
        assert '<a href="?view=finished">Go to page 1</a>' in page
        assert "No job finished" not in page and "No finished jobs" not in page


def link(page: str, rel: str) -> str:
    """The pager's "Older" (next) or "Newer" (prev) link, as the browser follows it."""
    return unescape(re.search(rf'<a href="([^"]*)" rel="{rel}">', page).group(1))


def poll_url(page: str) -> str:
    return unescape(re.search(r'<tbody role="rowgroup" id="job-rows" hx-get="([^"]*)"', page).group(1))


def test_pages_past_the_first_are_pinned_so_jobs_finishing_meanwhile_do_not_shift_them(
    alice_client, is_postgres, django_assert_max_num_queries
):
    """An operator on page 2 saw, 6 s later, the last row of page 1 become its first: every job
    finishing meanwhile pushed each row one place down, so paging skipped or repeated rows."""
    with time_machine.travel(NOW, tick=False):
        jobs = [JobFactory(completed=True, finished_at=NOW - timedelta(minutes=i)) for i in range(101)]
        page_1 = alice_client.get("/jobs/?view=finished").content.decode()
    older = link(page_1, "next")
    assert "until=" in older and "live · updated 03:00:00 UTC" in page_1

    later = NOW + timedelta(seconds=6)
    with time_machine.travel(later, tick=False):
        JobFactory.create_batch(3, completed=True, finished_at=later)  # finished while the reader read page 1
        page_2 = alice_client.get(f"/jobs/{older}")
        with django_assert_max_num_queries((2 if is_postgres else 3) + 4):  # login, one per finished status, paused
            polled = alice_client.get(poll_url(page_2.content.decode()), headers=htmx("job-rows"))
        page_3 = alice_client.get(f"/jobs/{link(page_2.content.decode(), 'next')}")
        latest = alice_client.get(f"/jobs/{link(page_2.content.decode(), 'prev')}")

    assert listed(page_2) == listed(polled) == [job.id for job in jobs[50:100]]
    assert listed(page_3) == [jobs[100].id]
    html = page_2.content.decode()
    assert "51–100 of the jobs finished in the 24h before 03:00:00 UTC" in html
    assert 'as of 03:00:00 UTC · <a href="?view=finished">back to the latest</a>' in html
    assert "live · updated" not in html
    # Page 1 stays live: "Newer" goes back to it, with the jobs finished since.
    assert link(html, "prev") == "?view=finished"
    assert len(listed(latest)) == 50 and listed(latest)[3] == jobs[0].id
    assert "live · updated 03:00:06 UTC" in latest.content.decode()


@pytest.mark.parametrize(
    "query, refused",
    [
        ("view=finished&until=yesterday", "the moment the list is pinned at, as its pager gives it"),
        ("view=finished&until=2026-11-29T03:00:01Z", "is in the future"),
        ("view=finished&until=0001-01-01T00:00:00Z", "more than a year ago"),  # its window was a 500
        ("until=2026-11-29T02:00:00Z", "only the finished list is pinned for paging"),
        ("view=finished&until=2026-11-29T02:00:00Z&until=2026-11-29T01:00:00Z", "given 2 times; give it once"),
    ],
)
@time_machine.travel(NOW, tick=False)
def test_a_bad_pin_is_a_400_naming_the_field(alice_client, query, refused):
    for response in (
        alice_client.get(f"/jobs/?{query}"),
        alice_client.get(f"/jobs/?{query}", headers=htmx("job-rows")),
    ):
        assert response.status_code == 400
        assert f"(<code>until</code>): {refused}" in response.content.decode()


def test_a_page_and_a_poll_take_a_bounded_number_of_queries(
    alice_client, big_history, is_postgres, django_assert_max_num_queries
):
    login = 2 if is_postgres else 3  # the session, the user with their permissions (SQLite: in two queries)
    with django_assert_max_num_queries(login + 3):  # count, rows, paused job types
        response = alice_client.get("/jobs/")
    assert response.context["page"].total == 240
    with django_assert_max_num_queries(login + 4):  # one per finished status, the paused types (live banner)
        alice_client.get("/jobs/?view=finished&window=7d&page=3", headers=htmx("job-rows"))
    with django_assert_max_num_queries(login + 5):  # + the job the id points at, paused job types
        alice_client.get(f"/jobs/?q={big_history.id}&status=queued")


@time_machine.travel(NOW, tick=False)
def test_a_finished_status_alone_lists_the_finished_jobs(alice_client):
    """/jobs/?status=failed, typed or linked: the failed jobs, not an error about active statuses."""
    failed = JobFactory(failed=True, finished_at=NOW - timedelta(minutes=5))
    JobFactory(completed=True, finished_at=NOW - timedelta(minutes=5))
    JobFactory(running=True)

    response = alice_client.get("/jobs/?status=failed")

    assert response.status_code == 200
    assert listed(response) == [failed.id]
    page = response.content.decode()
    assert "<title>Recently finished jobs" in page
    assert '<input type="hidden" name="view" value="finished">' in page


@time_machine.travel(NOW, tick=False)
def test_a_pin_at_an_offset_postgres_would_refuse_is_read_in_utc(alice_client):
    """Python takes offsets up to ±23:59, Postgres up to ±15:59: until=…-23:12 was a 500."""
    moment = (NOW - timedelta(hours=3)).astimezone(dt_timezone(-timedelta(hours=23, minutes=12)))

    response = alice_client.get("/jobs/", {"view": "finished", "page": 2, "until": moment.isoformat()})

    assert response.status_code == 200
