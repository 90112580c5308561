import pytest

import tests.jobs.executors  # noqa: F401  (registers the test job types)


@pytest.fixture
def as_alice(client, alice):
    """The test client, logged in as alice (tests/conftest.py: she may see and act on everything)."""
    client.force_login(alice)
    return client
