"""Settings for the test suite: the project's own, from the same environment, plus speed.

DATABASE_URL picks the database as everywhere else (SQLite under var/ by default;
CI runs the suite on Postgres too).
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Each run gets its own django-q2 queue name so parallel runs sharing Redis never mix.
# Tests set the time (time_machine) and mean it: the database's real clock must not correct it
# (jobs/clock.py, whose own tests turn this on).
JOBS = {**JOBS, "CLOCK_FROM_DATABASE": False}  # noqa: F405
# The real clusters tests start would sample this machine (a busy CPU raises alerts tests do not
# expect); the sampler's own tests turn this on.
HEALTH = {**HEALTH, "SAMPLE_NODE_RESOURCES": False}  # noqa: F405
Q_CLUSTER = {**Q_CLUSTER, "name": f"jobmonitor-test-{os.getpid()}"}  # noqa: F405
