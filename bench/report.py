"""The benchmark's results: one row per figure, checked against its target, printed as a table."""

import statistics
from dataclasses import asdict, dataclass


@dataclass
class Row:
    figure: str
    baseline: str  # the baseline's value, with its unit
    ours: str
    ratio: float | None  # ours / baseline (or baseline / ours for throughput: see `target`)
    target: str  # "<= 2.0", ">= 0.9"; "" for rows that only inform
    passed: bool | None  # None: nothing to judge (informational, or skipped)
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def median(values) -> float:
    values = list(values)
    if not values:
        raise ValueError("median of no values")
    return statistics.median(values)


def ratio(ours: float, baseline: float) -> float:
    if baseline <= 0:
        raise ValueError(f"baseline must be positive, not {baseline!r}")
    return ours / baseline


def meets(value: float, target: str) -> bool:
    """Whether `value` meets a target written "<= 1.5" or ">= 0.9"."""
    op, _, limit = target.partition(" ")
    if op == "<=":
        return value <= float(limit)
    if op == ">=":
        return value >= float(limit)
    raise ValueError(f"target must be '<= x' or '>= x', not {target!r}")


def judged(figure: str, baseline: str, ours: str, value: float, target: str, note: str = "") -> Row:
    return Row(figure, baseline, ours, round(value, 2), target, meets(value, target), note)


def info(figure: str, baseline: str, ours: str, value: float | None = None, note: str = "") -> Row:
    return Row(figure, baseline, ours, None if value is None else round(value, 2), "", None, note)


def skipped(figure: str, reason: str, target: str = "") -> Row:
    return Row(figure, "-", "-", None, target, None, f"skipped: {reason}")


HEADERS = ("figure", "baseline", "ours", "ratio", "target", "result")


def _result(row: Row) -> str:
    if row.passed is None:
        return "skipped" if row.note.startswith("skipped") else "info"
    return "pass" if row.passed else "FAIL"


def table(rows: list[Row]) -> str:
    """A plain-text table (also valid Markdown), notes listed under it."""
    cells = [
        (r.figure, r.baseline, r.ours, "" if r.ratio is None else f"{r.ratio:.2f}", r.target, _result(r)) for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(HEADERS)]

    def line(values):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    out = [line(HEADERS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(c) for c in cells]
    notes = [f"- {r.figure}: {r.note}" for r in rows if r.note]
    if notes:
        out += ["", *notes]
    return "\n".join(out)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"


def per_second(value: float) -> str:
    return f"{value:.1f} jobs/s"


def mb(value: float) -> str:
    return f"{value:.1f} MB"
