"""A database outage on a page is a 503 to try again shortly, not a 500 (the outage itself, on two
nodes and a real web server: tests/reliability/test_database_outage.py)."""

import pytest
from django.db import OperationalError
from django.test import Client

from monitoring import selectors

pytestmark = pytest.mark.django_db

OUTAGE = OperationalError('connection failed: FATAL:  database "jobs" is not currently accepting connections')


def unavailable(*args, **kwargs):
    raise OUTAGE


@pytest.fixture
def operator(alice):
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    return client


def test_a_page_whose_database_is_unreachable_answers_503(operator, monkeypatch):
    monkeypatch.setattr(selectors, "job_detail", unavailable)

    response = operator.get("/jobs/00000000-0000-0000-0000-000000000001/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"cannot reach its database" in response.content


def test_any_other_error_is_still_a_500(operator, monkeypatch):
    monkeypatch.setattr(selectors, "job_detail", lambda *args, **kwargs: 1 / 0)

    assert operator.get("/jobs/00000000-0000-0000-0000-000000000001/").status_code == 500
