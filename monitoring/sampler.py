"""Each node samples its own resources, every health-check interval.

The scheduled health checks run on one node per run, whichever took the task: a host's cpu,
memory, disk and clock were read only when it landed there, so with five nodes a host could go
unread long enough to be forgotten (HEALTH_FORGET_AFTER_MINUTES), and a node whose disk filled
was seen only by luck. So every node samples its own from a thread of its pusher process, started
beside the job dispatch thread (jobs.brokers): one per node, for as long as the node runs.

A thread of its own: sampling the CPU takes HEALTH_CPU_SAMPLE_SECONDS, and a database that hangs
holds the sample, never the pusher handing tasks to workers nor the dispatch of retries. A sample
that fails (the database unavailable) is logged and the next one is taken at its time.
"""

import logging
import time

from monitoring.health import health_service, sample_interval
from monitoring.pending import DATABASE_UNAVAILABLE, reset_broken_connection

logger = logging.getLogger(__name__)

# How often the thread looks whether a sample is due.
TICK_SECONDS = 1.0


class NodeResourceSampler:
    clock = staticmethod(time.monotonic)

    def __init__(self):
        self._next_sample = 0.0  # the first tick samples: a node is seen as soon as it starts

    def tick(self) -> bool:
        """Sample this node's resources if one is due; whether it did. Never raises."""
        interval = sample_interval()
        now = self.clock()
        if interval is None or now < self._next_sample:
            return False
        # Due again an interval after this one began, whatever it took: one sample per interval.
        self._next_sample = now + interval
        try:
            health_service.sample_node_resources_sync()
        except DATABASE_UNAVAILABLE as e:
            # Else every later sample fails on the dead connection ("the connection is closed").
            reset_broken_connection()
            logger.warning("this node's resources were not sampled, database unavailable: %s", e)
        except Exception:
            logger.exception("this node's resources could not be sampled")
        return True

    def run_forever(self, sleep=time.sleep) -> None:
        while True:
            self.tick()
            sleep(TICK_SECONDS)
