"""Settings of the processes the reliability suite starts beside pytest: `manage.py qcluster`
nodes and a gunicorn web server, on the test database (DATABASE_URL set by tests/reliability/nodes.py).

The project's test settings, plus two things a separate process needs: the queue name of the
pytest run that enqueues the jobs (tests/settings.py derives it from pytest's pid), and the
test-only job types (registered by the `tests.reliability` app).
"""

import os

from tests.settings import *  # noqa: F403

Q_CLUSTER = {**Q_CLUSTER, "name": os.environ["Q_CLUSTER_NAME"]}  # noqa: F405
INSTALLED_APPS = [*INSTALLED_APPS, "tests.reliability"]  # noqa: F405
# Real processes on the real clock: their times follow the database's where they differ, as in production.
JOBS = {**JOBS, "CLOCK_FROM_DATABASE": True}  # noqa: F405
