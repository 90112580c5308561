from django.apps import AppConfig


class ReliabilityTestsConfig(AppConfig):
    """Only installed in the processes the suite starts (tests/reliability/node_settings.py)."""

    name = "tests.reliability"
    label = "reliability_tests"

    def ready(self):
        import tests.jobs.executors  # noqa: F401
        import tests.reliability.executors  # noqa: F401
