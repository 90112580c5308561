import tests.jobs.executors  # noqa: F401  (registers the test job types)
