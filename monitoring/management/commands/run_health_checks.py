from django.core.management.base import BaseCommand, CommandError

from monitoring.health import _SEVERITY, health_service


def format_table(result: dict) -> str:
    """The components as an aligned table, worst first, and the overall status."""
    def worst_first(c):
        return -_SEVERITY.get(c["status"], 2), c["metric_type"], c["metric_name"]

    rows = sorted(result["components"], key=worst_first)
    table = [("STATUS", "TYPE", "COMPONENT", "VALUE", "MESSAGE")]
    table += [
        (c["status"], c["metric_type"], c["metric_name"], f"{c['metric_value']:g}", c["details"].get("message", ""))
        for c in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4] for row in table]
    checked_at = result["checked_at"]
    when = f" (checked {checked_at:%Y-%m-%d %H:%M:%S} UTC)" if checked_at else ""
    lines.append(f"\noverall: {result['status']}{when}")
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Run every health check now, store the results and print them."

    def add_arguments(self, parser):
        parser.add_argument(
            "--fail-on",
            choices=["warning", "critical"],
            help="exit with status 1 when the overall status is this bad or worse (for scripts and probes)",
        )

    def handle(self, fail_on=None, **options):
        result = health_service.run_health_checks_sync()
        self.stdout.write(format_table(result))
        if fail_on and _SEVERITY.get(result["status"], 2) >= _SEVERITY[fail_on]:
            raise CommandError(f"overall health is {result['status']}")
