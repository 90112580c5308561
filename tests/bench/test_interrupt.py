"""A phase interrupted (Ctrl-C, or bench.__main__ stopping it) ends, and its cluster with it."""

import os
import signal
import time

import pytest

from jobs.testing import running_cluster


def test_sigint_inside_a_running_cluster_raises_keyboard_interrupt_and_stops_it(transactional_db):
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), running_cluster(workers=1) as cluster:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(20)  # a phase waiting for its tasks: with django-q2's handler only, it sleeps on
    assert time.monotonic() - started < 15
    assert not cluster.sentinel.is_alive()
