"""One figure's measurements in a process of its own: `python -m bench.phase NAME KWARGS_JSON OUT_JSON`.

Each phase gets a fresh interpreter whose environment (set by bench.__main__) picks the
database and the broker, so the project's settings are used exactly as they are.
"""

import json
import os
import sys


def main(argv: list[str]) -> None:
    name, kwargs, out = argv[1], json.loads(argv[2]), argv[3]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    # Before any cluster forks: the finished-task counter and (in the project) the job type.
    from bench import cluster  # noqa: F401

    if name != "overhead_documented":  # bench.documented_settings has no jobs app
        from bench import tasks  # noqa: F401

    phases = {
        "overhead": "bench.overhead",
        "overhead_documented": "bench.overhead",
        "events": "bench.events",
        "memory": "bench.memory",
        "metrics": "bench.queries",
        "lists": "bench.queries",
    }
    module = __import__(phases[name], fromlist=["run"])
    result = getattr(module, {"metrics": "run_metrics", "lists": "run_lists"}.get(name, "run"))(**kwargs)
    # Figures judged on their own come back as table rows too (the others are judged across phases).
    rows = [row.as_dict() for row in module.rows(result)] if hasattr(module, "rows") else []
    with open(out, "w") as f:
        json.dump({"result": result, "rows": rows}, f, default=str)


if __name__ == "__main__":
    main(sys.argv)
