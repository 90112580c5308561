"""Pausing a job type from the dashboard (the AI service is down: stop burning attempts), seeing
what the pause holds on every page that shows those jobs, and resuming it."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from jobs.manager import job_manager
from jobs.models import Job, JobStatus, JobTypePause
from tests.factories import JobFactory
from tests.monitoring.views.conftest import htmx

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
SCRIPT = "<script>alert('pwned')</script>"
FORM = "application/x-www-form-urlencoded"


@time_machine.travel(NOW, tick=False)
def test_an_operator_pauses_a_job_type_and_every_page_says_what_it_holds(alice_client):
    held = JobFactory(job_type="ai_matching", status=JobStatus.QUEUED, queued_at=NOW)

    response = alice_client.post("/jobs/pause/", {"job_type": "ai_matching", "reason": "vendor down"}, follow=True)

    assert response.redirect_chain == [("/jobs/?job_type=ai_matching", 302)]
    page = response.content.decode()
    assert "Paused ai_matching." in page
    banner = page.split('class="notice notice-warning paused-types"')[1].split("</div>\n  </div>")[0]
    assert '❚❚ <a href="/jobs/?job_type=ai_matching">ai_matching</a> is paused' in banner
    assert "by <bdi>alice</bdi> 0.0 s ago: “<bdi>vendor down</bdi>”" in banner and "· 1 job held" in banner
    assert "▶ Resume</button>" in banner
    pause = JobTypePause.objects.get()
    assert (pause.job_type, pause.paused_by, pause.reason, pause.paused_at) == (
        "ai_matching",
        "alice",
        "vendor down",
        NOW,
    )

    overview = alice_client.get("/").content.decode()
    assert "❚❚ Paused, their jobs wait:" in overview
    held_by = "(1 held, by <bdi>alice</bdi> 0.0 s ago: “<bdi>vendor down</bdi>”)"
    assert f'<a href="/jobs/?job_type=ai_matching">ai_matching</a> {held_by}' in overview
    job_page = alice_client.get(f"/jobs/{held.id}/").content.decode()
    held_notice = (
        "❚❚ <strong>Held: ai_matching is paused</strong> by <bdi>alice</bdi> 0.0 s ago (“<bdi>vendor down</bdi>”)."
    )
    assert held_notice in job_page


def test_each_held_row_of_the_jobs_list_says_it_is_held(alice_client):
    """A row of the list says why that queued job does not start, not just the banner above."""
    held = JobFactory(job_type="ai_matching", status=JobStatus.QUEUED)
    running = JobFactory(job_type="ai_matching", running=True)  # started before the pause: it runs on
    other = JobFactory(job_type="demo.sleep", status=JobStatus.QUEUED)
    job_manager.pause_job_type_sync("ai_matching", by="bob")

    rows = (
        alice_client.get("/jobs/")
        .content.decode()
        .split('<tbody role="rowgroup" id="job-rows"')[1]
        .split("</tbody>")[0]
    )

    row_of = {job: rows.split(f'id="job-link-{job.id}"')[1].split("</tr>")[0] for job in (held, running, other)}
    assert "❚❚ held: ai_matching is paused" in row_of[held]
    assert "held" not in row_of[running] and "held" not in row_of[other]


def test_resuming_queues_the_held_jobs_again_and_says_how_many(alice_client, django_capture_on_commit_callbacks):
    held = [job_manager.submit_job("demo.sleep", {"seconds": 1, "steps": 1}) for _ in range(2)]
    job_manager.pause_job_type_sync("demo.sleep", by="bob")

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post("/jobs/resume/", {"job_type": "demo.sleep"}, follow=True)

    assert "Resumed demo.sleep: 2 held jobs queued again." in response.content.decode()
    assert "is paused" not in response.content.decode()
    assert not JobTypePause.objects.exists()
    resumed = [event.message for job in held for event in job.logs.filter(details__resumed=True)]
    assert resumed == ["attempt 1 enqueued again: demo.sleep resumed by alice"] * 2
    # A second click (or another operator's) finds it running already.
    again = alice_client.post("/jobs/resume/", {"job_type": "demo.sleep"}, follow=True).content.decode()
    assert "demo.sleep was not paused (someone resumed it already?)." in again


def test_pausing_a_paused_type_says_so_and_keeps_who_paused_it(alice_client):
    job_manager.pause_job_type_sync("ai_matching", by="bob", reason="first")
    page = alice_client.post("/jobs/pause/", {"job_type": "ai_matching"}, follow=True).content.decode()
    assert "ai_matching was already paused." in page
    assert JobTypePause.objects.get().paused_by == "bob"


@pytest.mark.parametrize(
    "data, refused",
    [
        ({}, "job_type: This field is required."),
        ({"job_type": "ai\nmatching"}, "job_type: must not contain control characters"),
        ({"job_type": " ai_matching"}, "job_type: must not begin or end with a space"),  # would pause nothing
        ({"job_type": "  "}, "job_type: must not begin or end with a space"),
        ({"job_type": "ai_matching", "reason": "x" * 501}, "reason: Ensure this value has at most 500 characters"),
    ],
)
def test_a_bad_pause_is_a_400_naming_the_field_and_pauses_nothing(alice_client, data, refused):
    response = alice_client.post("/jobs/pause/", data)
    assert response.status_code == 400
    assert "Nothing paused: " + refused in response.content.decode()
    assert not JobTypePause.objects.exists()


def test_pausing_a_name_no_job_has_is_refused_as_unknown(alice_client):
    response = alice_client.post("/jobs/pause/", {"job_type": "ai_matchin", "reason": "typo"})

    assert response.status_code == 400
    assert "Nothing paused: job_type: unknown job type &#x27;ai_matchin&#x27;; known job types: " in (
        response.content.decode()
    )
    assert not JobTypePause.objects.exists()


def test_a_job_type_given_twice_is_refused_not_picked(alice_client):
    response = alice_client.post("/jobs/pause/", "job_type=demo.sleep&job_type=ai_matching", content_type=FORM)
    assert response.status_code == 400
    assert "Nothing paused: job_type: given 2 times; give it once" in response.content.decode()
    job_manager.pause_job_type_sync("ai_matching")
    response = alice_client.post("/jobs/resume/", "job_type=ai_matching&job_type=x", content_type=FORM)
    assert response.status_code == 400 and JobTypePause.objects.filter(job_type="ai_matching").exists()


def test_each_poll_of_the_rows_brings_the_paused_types_with_it(alice_client):
    """A pause made elsewhere (the API, another operator) showed only after a reload."""
    poll = {"HX-Request": "true", "HX-Target": "job-rows"}
    assert (
        '<div id="paused-types" hx-swap-oob="true">\n\n</div>'
        in alice_client.get("/jobs/", headers=poll).content.decode()
    )
    job_manager.pause_job_type_sync("ai_matching", by="bob")
    swapped = (
        alice_client.get("/jobs/", headers=poll).content.decode().split('<div id="paused-types" hx-swap-oob="true">')[1]
    )
    assert "ai_matching</a> is paused" in swapped and "by <bdi>bob</bdi>" in swapped
    # Not a live region: swapped in every 2 s with a new age, a screen reader read it out each time.
    assert '<div class="notice notice-warning paused-types">' in swapped and "role=" not in swapped.split("</div>")[0]


def test_retrying_failed_jobs_of_a_paused_type_says_they_wait_as_a_timed_outcome(alice_client):
    """The notice is not polled: "ai_matching is paused: it waits" stayed above the live list
    after the type was resumed and the job ran. Told in the past tense, with its time, it does
    not contradict the list; the paused banner (polled) says whether it still is."""
    JobFactory(job_type="ai_matching", failed=True, finished_at=NOW - timedelta(hours=1))
    job_manager.pause_job_type_sync("ai_matching")
    retry = {"view": "finished", "status": "failed", "window": "24h"}

    with time_machine.travel(NOW, tick=False):
        notice = alice_client.post("/jobs/retry/", retry, headers=htmx("job-list")).content.decode().split("</p>")[0]

    assert notice.endswith(
        "Queued again 1 failed job at 03:00:00 UTC: it was put on the Active list. ai_matching was paused then: "
        "held until resumed."
    )


def test_retrying_one_failed_job_of_a_paused_type_says_it_waits_in_the_live_part(alice_client):
    """The outcome stays above the live part until the job stops: "it waits, ai_matching is paused"
    stayed there while the job ran, once another operator had resumed the type."""
    job = JobFactory(job_type="ai_matching", failed=True)
    job_manager.pause_job_type_sync("ai_matching", by="bob")

    live = alice_client.post(f"/jobs/{job.id}/retry/", headers=htmx("job-live")).content.decode()

    notice = live.split('<div id="job-notice"')[1].split("</div>")[0]
    assert "Retry queued: a new attempt will run.</p>" in notice and "paused" not in notice
    assert "Held: ai_matching is paused</strong> by <bdi>bob</bdi>" in live.split('<div id="job-notice"')[0]


def test_text_of_the_pause_is_escaped_everywhere_it_is_shown(alice_client):
    job = JobFactory(job_type=SCRIPT, status=JobStatus.QUEUED)
    job_manager.pause_job_type_sync(SCRIPT, by=SCRIPT, reason=SCRIPT)
    for url in ("/", "/jobs/", f"/jobs/{job.id}/"):
        page = alice_client.get(url).content.decode()
        assert "&lt;script&gt;alert(" in page, url
        assert "<script>alert(" not in page, url


def test_the_pause_form_and_resume_button_are_for_those_who_may_control_jobs_only(alice_client, viewer):
    job_manager.pause_job_type_sync("ai_matching")
    assert "Pause a job type" in alice_client.get("/jobs/").content.decode()
    viewer_client = Client()
    viewer_client.force_login(viewer)
    page = viewer_client.get("/jobs/").content.decode()
    assert "is paused" in page  # they see it
    assert "Pause a job type" not in page and "Resume</button>" not in page
    assert viewer_client.post("/jobs/pause/", {"job_type": "demo.sleep"}).status_code == 403
    assert viewer_client.post("/jobs/resume/", {"job_type": "ai_matching"}).status_code == 403
    assert list(JobTypePause.objects.values_list("job_type", flat=True)) == ["ai_matching"]


def test_csrf_holds(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.post("/jobs/pause/", {"job_type": "ai_matching"}).status_code == 403
    page = browser.get("/jobs/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = browser.post("/jobs/pause/", {"job_type": "ai_matching", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and JobTypePause.objects.filter(job_type="ai_matching").exists()


@time_machine.travel(NOW, tick=False)
def test_held_jobs_do_not_make_the_queue_look_stuck_to_the_health_check(settings):
    from monitoring.health import health_service

    settings.HEALTH = {**settings.HEALTH, "THRESHOLDS": {**settings.HEALTH["THRESHOLDS"], "jobs.queued": (1, 2)}}
    JobFactory.create_batch(3, job_type="ai_matching", status=JobStatus.QUEUED, updated_at=NOW - timedelta(hours=1))
    JobFactory(job_type="demo.sleep", status=JobStatus.QUEUED, updated_at=NOW - timedelta(seconds=30))
    job_manager.pause_job_type_sync("ai_matching")

    queue = {c["metric_name"]: c for c in health_service.check_job_queue_sync()["components"]}

    assert (queue["jobs.queued"]["metric_value"], queue["jobs.queued"]["status"]) == (1, "warning")
    assert queue["jobs.queued"]["details"]["message"] == "1 queued, 0 waiting to retry, 3 held by paused job types"
    assert queue["jobs.oldest_queued_age_s"]["metric_value"] == 30  # not the hour the held ones waited
    assert Job.objects.filter(status=JobStatus.QUEUED).count() == 4


def test_the_pause_form_offers_the_job_types_not_paused_yet(alice_client):
    job_manager.pause_job_type_sync("demo.sleep")
    page = alice_client.get("/jobs/").content.decode()
    pause_form = page.split('<details class="pause-form">')[1].split("</details>")[0]
    assert '<option value="demo.fail">' in pause_form and '<option value="demo.sleep">' not in pause_form
