"""Racing actions against each other in tests: real threads, each with its own connection."""

import threading

from django.db import connections


def at_once(*actions):
    """Run each action in its own thread (its own connection), all released together. Returns
    each one's outcome in order: ("ok", value) or ("error", exception)."""
    start = threading.Barrier(len(actions), timeout=10)
    outcomes = [None] * len(actions)

    def run(i, action):
        try:
            start.wait()
            outcomes[i] = ("ok", action())
        except Exception as e:  # noqa: BLE001 (reported to the test, not lost in a thread)
            outcomes[i] = ("error", e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, action)) for i, action in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(outcome is not None for outcome in outcomes), "a thread never finished"
    return outcomes
