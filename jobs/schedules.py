"""Periodic work, run by django-q2's scheduler.

settings.PERIODIC_TASKS names each task, its function and its interval in minutes; after
every `migrate` the Schedule table is made to match it (so intervals change with the
environment, and a task removed from settings stops running).

Each goes on the queue's urgent lane (jobs.brokers), ahead of the jobs waiting: health checks,
escalations and delivery retries are short, and they are most needed when a backlog of jobs
builds up (a drill saw the health checks skip two minutes behind one).
"""

from django.conf import settings
from django_q.conf import Conf
from django_q.models import Schedule

from jobs.brokers import urgent_lane

PREFIX = "jobmonitor:"


def sync_schedules(**kwargs) -> None:
    wanted = settings.PERIODIC_TASKS
    for name, task in wanted.items():
        minutes = int(task["minutes"])
        if minutes <= 0:
            continue
        Schedule.objects.update_or_create(
            name=PREFIX + name,
            defaults={
                "func": task["func"],
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
                # django-q2 enqueues a schedule on the broker of its q_options' "cluster", by list name.
                "kwargs": f"q_options={{'cluster': {urgent_lane(Conf.CLUSTER_NAME)!r}}}",
            },
        )
    keep = [PREFIX + name for name, task in wanted.items() if int(task["minutes"]) > 0]
    Schedule.objects.filter(name__startswith=PREFIX).exclude(name__in=keep).delete()
