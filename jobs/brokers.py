"""django-q2 brokers that also keep jobs moving.

Every qcluster has exactly one pusher process, and it calls `dequeue()` in a loop. Its first
call starts a thread in that process which dispatches retries whose delay has passed (every
JOBS["DISPATCH_INTERVAL"] seconds) and takes back jobs of dead workers and re-enqueues lost
ones (every JOBS["SWEEP_INTERVAL"]). So a retry starts within about a second of its due time
(django-q2's own scheduler only ticks every 30 s), and every qcluster node does this work
without an extra process to deploy. A thread, not the pusher's loop itself: the pusher blocks
handing a task to its node while every worker is busy, and a dead worker's job must not wait
minutes for a long job elsewhere to end (a drill saw 116 s instead of 35). Several nodes doing
it at once is safe: each change is a conditional UPDATE that only one of them wins.

Each also keeps an urgent lane beside its queue: tasks enqueued with `enqueue_urgent` (alert
deliveries, alerts/services.py; periodic tasks, jobs/schedules.py; attempts a stopping node
hands back, jobs/tasks.py) are handed out before any job waiting in the queue, oldest first,
so a notification does not wait behind a backlog of jobs, which is when alerts fire. It can
still wait for the tasks a node has already taken (Q_CLUSTER's queue_limit, workers², and one
more its pusher holds) behind the job each worker runs, and on the ORM broker up to one poll
interval (0.2 s) more: with every worker on long jobs, for them to end (a drill saw health
checks 4-5 minutes late behind 90 s jobs; docs/deployment.md).

The Redis broker also notices when Redis loses its data (flushed, restarted without persistence,
failed over to an empty replica): the sweep then enqueues again at once every job whose task was
in it, instead of after JOBS["REQUEUE_AFTER"] (RedisBroker.tasks_lost_before).

The pusher also samples its node's cpu, memory, disk and clock every health-check interval, from
a thread of its own (monitoring.sampler): every node is seen, not only the one the scheduled
health checks landed on.

The pusher and the sentinel live as long as their node, and django-q2 never drops their
broken database connections by itself: after a database outage these brokers do, so the
node carries on as soon as the database answers again.
"""

import logging
import multiprocessing
import os
import threading
import time
from datetime import datetime

import redis
from django.conf import settings
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf

from monitoring.pending import DATABASE_UNAVAILABLE, reset_broken_connection

logger = logging.getLogger(__name__)


def urgent_lane(list_key: str) -> str:
    """The list name of a queue's urgent lane."""
    return f"{list_key}:urgent"


class JobDispatchMixin:
    _next_dispatch = 0.0
    _next_sweep = 0.0
    _judge_heartbeats_from = 0.0
    _dispatching_in = None  # the pid whose dispatch thread runs
    clock = staticmethod(time.monotonic)

    def keep_dispatching(self) -> None:
        """Start the dispatch thread once in this process, if it is a cluster's pusher (django-q2
        forks it from the sentinel). A broker driven by hand in a main process (a test, a shell)
        dispatches only when told to (dispatch_jobs)."""
        if self._dispatching_in == os.getpid() or multiprocessing.parent_process() is None:
            return
        self._dispatching_in = os.getpid()
        from jobs.queue import inherited_sentinel

        # Looked up here: the sentinel is on the stack of this (main) thread, not the new one's.
        sentinel = inherited_sentinel()
        args = (sentinel, os.getppid())
        threading.Thread(target=self._dispatch_forever, args=args, name="job-dispatch", daemon=True).start()
        self.keep_sampling()

    def keep_sampling(self) -> None:
        """Start the thread sampling this node's resources (monitoring.sampler): one per node,
        as this one per pusher, whichever node the scheduled health checks land on."""
        from monitoring.sampler import NodeResourceSampler

        sampler = NodeResourceSampler()
        threading.Thread(target=sampler.run_forever, name="node-resources", daemon=True).start()

    def _dispatch_forever(self, sentinel=None, sentinel_pid=None) -> None:
        from jobs.queue import node_stopping_or_orphaned

        while True:
            if sentinel is not None:  # an idle node's workers take no task to look with
                node_stopping_or_orphaned(sentinel, sentinel_pid)
            self.dispatch_jobs()
            self.sleep_between_ticks()

    def sleep_between_ticks(self, sleep=time.sleep) -> None:
        interval = min(settings.JOBS["DISPATCH_INTERVAL"], settings.JOBS["SWEEP_INTERVAL"])
        fell_asleep = self.clock()
        sleep(interval)
        overslept = self.clock() - fell_asleep - interval
        if overslept > settings.JOBS["HEARTBEAT_INTERVAL"]:
            # This process did not run meanwhile (the node stopped with SIGSTOP, a paused VM), nor
            # did its node's heartbeat threads: as after an outage, give them a full STALE_AFTER
            # before judging. A drill froze a lone node for 12 s: once resumed, its sweep took
            # back its own live attempts (1 run in 3) before their heartbeat threads could beat.
            logger.warning("the job dispatch thread slept %.1fs more than asked: judging heartbeats later", overslept)
            self._judge_heartbeats_from = self.clock() + settings.JOBS["STALE_AFTER"]

    @property
    def urgent_key(self) -> str:
        return urgent_lane(self.list_key)

    def dispatch_jobs(self) -> None:
        from jobs.manager import job_manager

        now = self.clock()
        try:
            if now >= self._next_dispatch:
                self._next_dispatch = now + settings.JOBS["DISPATCH_INTERVAL"]
                job_manager.dispatch_due_retries(broker=self)
            if now >= self._next_sweep:
                self._next_sweep = now + settings.JOBS["SWEEP_INTERVAL"]
                if now >= self._judge_heartbeats_from:
                    job_manager.recover_stale_jobs()
                job_manager.requeue_lost_jobs(broker=self)
        except DATABASE_UNAVAILABLE as e:
            # Otherwise every later tick fails on the dead connection ("the connection is
            # closed"), and retries and sweeps stop for good.
            reset_broken_connection()
            self.database_lost()
            logger.warning("job dispatch skipped, database unavailable: %s", e)
        except Exception:
            # Never let this take the pusher down; the next tick tries again.
            logger.exception("job dispatch failed")

    def database_lost(self) -> None:
        """No worker could write a heartbeat while the database was unavailable either: give
        running attempts a full STALE_AFTER once it is back before judging any abandoned."""
        self._judge_heartbeats_from = self.clock() + settings.JOBS["STALE_AFTER"]

    def set_stat(self, key: str, value: str, timeout: int):
        # The sentinel saves its status (workers alive, read by the health check) every half
        # second; through the database cache, a broken connection would keep it failing until
        # django-q2's scheduler next tidies connections, up to 30 s after the database is back.
        try:
            return super().set_stat(key, value, timeout)
        except DATABASE_UNAVAILABLE:
            reset_broken_connection()
            raise


class ORMBroker(JobDispatchMixin, ORM):
    _next_urgent_check = 0.0

    def enqueue_urgent(self, task) -> int:
        return self.get_connection().create(key=self.urgent_key, payload=task, lock=timezone.now()).pk

    def dequeue(self):
        try:
            self.keep_dispatching()
            tasks = self._claim_urgent() or self._claim(self.list_key)
            if tasks is None:
                time.sleep(Conf.POLL)  # both empty: spare the CPU, as django-q2 does
            return tasks
        except DATABASE_UNAVAILABLE as e:
            # django-q2's pusher takes any error here for a crashed broker: it sleeps 10 s and
            # exits to be restarted. Polling again resumes as soon as the database answers.
            reset_broken_connection()
            self.database_lost()
            logger.warning("could not poll the task queue, database unavailable: %s", e)
            time.sleep(Conf.POLL)
            return None

    def _claim_urgent(self) -> list[tuple] | None:
        """The urgent lane's tasks; an empty lane is looked at again a poll interval later, not
        for every task the pusher takes (a query per task cost the pusher a quarter more time)."""
        now = self.clock()
        if now < self._next_urgent_check:
            return None
        tasks = self._claim(self.urgent_key)
        if not tasks:
            self._next_urgent_check = now + Conf.POLL
        return tasks

    def _claim(self, key: str) -> list[tuple] | None:
        """ORM.dequeue's claim for one list, oldest task first; None when nothing waits in it.

        Oldest first: django-q2 takes the first rows Postgres returns, in no set order (an
        UPDATE moves a row), so a task could wait behind later ones; the requeue sweep relies
        on the order too (EnhancedJobManager.requeue_lost_jobs). Served by the (key, id) index
        (jobs/migrations/0006).
        """
        waiting = list(self.get_connection().filter(key=key, lock__lt=timezone.now()).order_by("id")[: Conf.BULK])
        if not waiting:
            return None
        # Each claimed by moving its lock forward, unless another cluster did first.
        return [
            (task.pk, task.payload)
            for task in waiting
            if self.get_connection().filter(id=task.id, lock=task.lock).update(lock=self.timeout(task))
        ]

    def purge_queue(self):
        return self.get_connection().filter(key__in=(self.list_key, self.urgent_key)).delete()


class RedisBroker(JobDispatchMixin, Redis):
    @staticmethod
    def get_connection(list_key: str | None = None):
        # django-q2's own opens the URL with redis-py's defaults: the same timeouts as the cache
        # (settings.REDIS_TIMEOUT_SECONDS), whatever the redis-py release.
        return redis.from_url(Conf.REDIS, **settings.REDIS_OPTIONS)

    @property
    def marker_key(self) -> str:
        return f"{self.list_key}:epoch"

    def tasks_lost_before(self, now: datetime) -> datetime | None:
        """Tasks enqueued before the returned time are gone: Redis lost its data then.

        A key beside the queue, with no expiry, holds when it was set. Redis losing its data loses
        it too: the first sweep to miss it sets it again (SET NX: one node wins, the others read
        its time), and every queued job enqueued before that is lost, whichever node asks, on
        every tick until each is enqueued again (the sweep does a limited number per tick). A new
        Redis looks the same: its first use enqueues the jobs already queued once more, duplicates
        the claim refuses. None in the moment between a new loss and the set."""
        if self.connection.set(self.marker_key, now.isoformat(), nx=True):
            logger.warning(
                "Redis had no %s: it lost its data (flushed, restarted without persistence, an empty replica) "
                "or is new; jobs enqueued before now are enqueued again",
                self.marker_key,
            )
            return now
        marked = self.connection.get(self.marker_key)
        return datetime.fromisoformat(marked.decode()) if marked else None

    def enqueue_urgent(self, task) -> int:
        return self.connection.rpush(self.urgent_key, task)

    def dequeue(self):
        self.keep_dispatching()
        # BLPOP pops from the first of its lists that holds something: the urgent one first.
        task = self.connection.blpop([self.urgent_key, self.list_key], 1)
        if task:
            return [(None, task[1])]
        return None

    def purge_queue(self):
        self.connection.delete(self.urgent_key)
        return super().purge_queue()
