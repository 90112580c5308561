import uuid

import pytest
from django.urls import reverse

from tests.factories import JobExecutionLogFactory, JobFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_execution_log_admin_finds_a_jobs_events_by_its_short_id(client):
    user = UserFactory(username="viewer", permissions=["monitoring.view_jobexecutionlog"])
    user.is_staff = True
    user.save()
    client.force_login(user)
    wanted = JobExecutionLogFactory(job=JobFactory(id=uuid.UUID("63644131-0000-4000-8000-000000000001")))
    JobExecutionLogFactory(job=JobFactory(id=uuid.UUID("63644132-0000-4000-8000-000000000001")))

    response = client.get(reverse("admin:monitoring_jobexecutionlog_changelist"), {"q": "63644131"})
    assert [log.id for log in response.context["cl"].result_list] == [wanted.id]
