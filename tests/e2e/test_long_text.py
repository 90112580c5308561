"""Errors are sometimes one unbroken token thousands of characters long: pages wrap it, never widen."""

import pytest
from django.utils import timezone

from alerts.models import AlertState
from jobs.models import JobStatus, RetryStatus
from monitoring.models import EventType
from tests.e2e.conftest import log_in
from tests.factories import (
    AlertHistoryFactory,
    JobExecutionLogFactory,
    JobFactory,
    JobRetryHistoryFactory,
    UserFactory,
)

pytestmark = pytest.mark.e2e

UNBROKEN = "x" * 3_000
WINDOW = {"width": 1400, "height": 900}


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.fixture
def failed_job(db):
    job = JobFactory(
        job_type="ai_matching",
        status=JobStatus.FAILED,
        finished_at=timezone.now(),
        parameters={"candidate_ids": UNBROKEN},
        message=f"ValueError: {UNBROKEN}",
        last_error={"type": "ValueError", "message": UNBROKEN},
    )
    JobRetryHistoryFactory(job=job, status=RetryStatus.FAILED, error_message=f"ValueError: {UNBROKEN}")
    return job


def test_an_alert_with_a_long_unbroken_error_fits_the_window(page, alice, failed_job):
    alert = AlertHistoryFactory(job=failed_job, title=f"ai_matching failed {UNBROKEN[:150]}", message=UNBROKEN)
    AlertState.objects.create(alert=alert, fingerprint="fp", error_summary=f"ValueError: {UNBROKEN}"[:500])
    page.set_viewport_size(WINDOW)

    log_in(page, "alice", next_url=f"/alerts/{alert.id}/")

    assert "ValueError: xxx" in page.locator("#alert-live").inner_text()
    assert page_width(page) <= WINDOW["width"]


@pytest.mark.parametrize("window", [WINDOW, {"width": 390, "height": 844}])
def test_one_error_groups_view_with_a_long_unbroken_message_fits_the_window(page, alice, failed_job, window):
    """Its heading says the error's type and message: one token of 3,000 characters wraps."""
    details = {"type": "ValueError", "message": UNBROKEN, "error_class": "data", "fingerprint": "f" * 16}
    JobExecutionLogFactory(job=failed_job, event_type=EventType.ERROR, timestamp=timezone.now(), error_details=details)
    page.set_viewport_size(window)

    log_in(page, "alice", next_url=f"/errors/?error={'f' * 16}")

    assert "One error: ValueError: xxx" in page.locator("h1").inner_text()
    assert page_width(page) <= window["width"]


def test_the_admin_job_page_with_a_long_unbroken_error_fits_the_window(page, failed_job):
    staff = UserFactory(username="ops", permissions=["jobs.view_job", "jobs.view_jobretryhistory"])
    staff.is_staff = True
    staff.save()
    page.set_viewport_size(WINDOW)

    log_in(page, "ops")
    page.goto(f"/admin/jobs/job/{failed_job.id}/change/")

    assert UNBROKEN[:100] in page.locator("#content").inner_text()
    assert page.locator(".inline-group td.field-error_message").count() == 1
    assert page_width(page) <= WINDOW["width"]
    # The short cells beside it keep their words whole: "Failed" read "Faile" over "d".
    assert lines_of(page, ".inline-group td.field-status") == 1


def lines_of(page, cell: str) -> int:
    """How many lines the text of `cell` takes (one client rect per line)."""
    return page.evaluate(
        """(cell) => {
            const text = document.createTreeWalker(document.querySelector(cell), NodeFilter.SHOW_TEXT);
            while (text.nextNode() && !text.currentNode.textContent.trim()) {}
            const range = document.createRange();
            range.selectNodeContents(text.currentNode);
            return range.getClientRects().length;
        }""",
        cell,
    )
