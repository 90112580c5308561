"""django-q2 periodic tasks (settings.PERIODIC_TASKS): thin, they call the services."""


def run_health_checks() -> str:
    from monitoring.health import health_service

    # Not the resources: every node samples its own (monitoring.sampler).
    return health_service.run_health_checks_sync(resources=False)["status"]


def prune_monitoring() -> dict:
    from monitoring.retention import prune_monitoring

    return prune_monitoring()
