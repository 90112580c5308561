"""django-q2 task functions: thin, each hands over to a service or the alert manager."""


def deliver(delivery_id: int) -> str | None:
    from alerts.services import delivery_send

    return delivery_send(delivery_id=delivery_id)


def dispatch_due_deliveries() -> int:
    from alerts import services

    return services.dispatch_due_deliveries()


def escalate_due_alerts() -> int:
    from alerts.manager import alert_manager

    return alert_manager.escalate_due_alerts_sync()


def check_performance() -> int:
    from alerts.manager import alert_manager

    return alert_manager.check_performance_sync()
