"""A refused Retry says why, in the operator's words: a permission taken away, a page out of date."""

import pytest
from django.contrib.auth.models import Permission

from jobs.models import Job, JobStatus
from tests.e2e.conftest import log_in
from tests.factories import JobFactory

pytestmark = pytest.mark.e2e


def alert_shown_on_retry(page) -> str:
    page.once("dialog", lambda dialog: dialog.dismiss())  # else the alert blocks the page
    with page.expect_event("dialog") as shown:
        page.click("#retry-job")
    return shown.value.message


def test_retry_with_the_token_of_an_older_login_says_to_reload(page, alice):
    """Drill: logged in again in another tab, Retry in the old one alerted only
    "The server refused this action (403 Forbidden)."."""
    job = JobFactory(failed=True)
    log_in(page, "alice", next_url=f"/jobs/{job.id}/")

    other_tab = page.context.new_page()  # same browser, same cookies
    other_tab.goto("/")
    other_tab.click("text=Log out")
    log_in(other_tab, "alice")
    other_tab.close()

    message = alert_shown_on_retry(page)

    assert message == "The page is out of date (you logged in again elsewhere?): reload it and try again."
    assert Job.objects.get(id=job.id).status == JobStatus.FAILED
    page.reload()
    page.click("#retry-job")  # reloaded: accepted
    page.wait_for_selector("#job-notice >> text=Retry queued")


def test_retry_after_the_permission_was_taken_away_names_it(page, alice):
    job = JobFactory(failed=True)
    log_in(page, "alice", next_url=f"/jobs/{job.id}/")
    alice.user_permissions.remove(Permission.objects.get(content_type__app_label="jobs", codename="change_job"))

    message = alert_shown_on_retry(page)

    assert message == (
        "You are logged in as alice, without the permission this action needs (jobs.change_job). "
        "Ask an administrator to grant it."
    )
    assert Job.objects.get(id=job.id).status == JobStatus.FAILED
