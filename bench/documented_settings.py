"""Settings of figure 1's baseline: django-q2 as its documentation sets it up, nothing tuned.

A Django project whose only app is django_q, on the benchmark database with Django's
defaults (a connection is not kept between uses: CONN_MAX_AGE 0) and a Q_CLUSTER giving
only a name, the 2 workers and the broker; every other option is django-q2's default
(results of successful tasks saved, up to 250). The monitored side runs on the project's
own settings (config/settings.py), as a deployment of it would.
"""

import os

import dj_database_url

SECRET_KEY = "benchmark-only-secret-key"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django_q"]
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {"version": 1, "root": {"level": "WARNING"}}

Q_CLUSTER = {"name": "bench", "workers": 2}
if os.getenv("REDIS_URL"):
    Q_CLUSTER["redis"] = os.environ["REDIS_URL"]
else:
    Q_CLUSTER["orm"] = "default"
