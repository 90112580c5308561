"""The lists that turn into cards on a phone (tables with class stack-narrow) keep their table
roles for screen readers.

Below 640 px their rows and cells are laid out with CSS `display: block`, and some browsers
(Safari with VoiceOver among them) then drop the table semantics: a cell is read without its
column's header. Each part of such a table names its role explicitly, so it stays a table.
"""

from html.parser import HTMLParser

import pytest
from django.utils import timezone

from monitoring.models import EventType
from tests.factories import (
    AlertHistoryFactory,
    JobExecutionLogFactory,
    JobFactory,
    JobRetryHistoryFactory,
    SystemHealthMetricFactory,
)

ROLES = {"table": "table", "thead": "rowgroup", "tbody": "rowgroup", "tr": "row", "td": "cell"}
TH_ROLES = {"col": "columnheader", "row": "rowheader"}


class StackedTables(HTMLParser):
    """Every element of a stack-narrow table, with the role it should carry and the one it has."""

    def __init__(self):
        super().__init__()
        self.depth = 0  # tables open inside a stack-narrow table, itself included
        self.parts = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and (self.depth or "stack-narrow" in (attrs.get("class") or "").split()):
            self.depth += 1
        if self.depth and tag in (*ROLES, "th"):
            expected = TH_ROLES.get(attrs.get("scope")) if tag == "th" else ROLES[tag]
            self.parts.append((tag, expected, attrs.get("role")))

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1


def stacked_table_parts(html: str) -> list[tuple[str, str, str]]:
    parser = StackedTables()
    parser.feed(html)
    return parser.parts


@pytest.fixture
def a_bit_of_everything(db):
    now = timezone.now()
    failed = JobFactory(failed=True, worker="node-1:4242", started_at=now, finished_at=now)
    for event_type in (EventType.STARTED, EventType.ERROR):
        JobExecutionLogFactory(
            job=failed, event_type=event_type, timestamp=now, error_details={"fingerprint": "f" * 16}
        )
    JobRetryHistoryFactory(job=failed, attempt_number=1)
    JobFactory(running=True, worker="node-1:4243", heartbeat_at=now, updated_at=now)
    SystemHealthMetricFactory(timestamp=now)
    AlertHistoryFactory(title="Health check api/ai_matching is critical")
    return failed


@pytest.mark.parametrize(
    "url, tables",
    [
        ("/jobs/", 1),
        ("/jobs/?view=finished", 1),
        ("/alerts/", 1),
        ("/errors/?timeframe=24h", 1),
        ("/health/", 2),  # the components of a section, the workers by host
        ("job", 2),  # a job's timeline and attempts
    ],
)
def test_every_part_of_a_list_shown_as_cards_names_its_table_role(alice_client, a_bit_of_everything, url, tables):
    if url == "job":
        url = f"/jobs/{a_bit_of_everything.id}/"
    page = alice_client.get(url).content.decode()

    parts = stacked_table_parts(page)

    assert sum(1 for tag, _, _ in parts if tag == "table") >= tables
    assert {tag for tag, _, _ in parts} >= {"table", "thead", "tbody", "tr", "th", "td"}
    assert [(tag, expected, role) for tag, expected, role in parts if role != expected] == []


def test_a_table_part_without_its_role_is_found():
    # The check above can fail: a cell laid out as a card with no role is reported.
    parts = stacked_table_parts('<table class="table stack-narrow" role="table"><tr role="row"><td>x</td></tr></table>')
    assert parts == [("table", "table", "table"), ("tr", "row", "row"), ("td", "cell", None)]
