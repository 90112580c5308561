"""How figures are judged against their targets and printed."""

import pytest

from bench.report import info, judged, meets, ratio, skipped, table


@pytest.mark.parametrize(
    "value, target, expected",
    [(1.5, "<= 1.5", True), (1.51, "<= 1.5", False), (0.9, ">= 0.9", True), (0.89, ">= 0.9", False)],
)
def test_targets_are_inclusive_bounds(value, target, expected):
    assert meets(value, target) is expected


def test_an_unknown_target_is_an_error():
    with pytest.raises(ValueError, match="target must be"):
        meets(1.0, "~ 1.0")


def test_a_ratio_needs_a_positive_baseline():
    assert ratio(3.0, 2.0) == 1.5
    with pytest.raises(ValueError, match="baseline must be positive"):
        ratio(1.0, 0.0)


def test_the_table_says_pass_fail_info_and_skipped_and_lists_the_notes():
    rows = [
        judged("fast enough", "1.00 ms", "1.20 ms", 1.2, "<= 1.5"),
        judged("too slow", "1.00 ms", "3.00 ms", 3.0, "<= 1.5", note="EXPLAIN says seq scan"),
        info("context", "1", "2", 2.0),
        skipped("redis", "Redis at redis://x does not answer"),
    ]
    printed = table(rows)
    lines = printed.splitlines()
    assert lines[0].startswith("| figure ")
    assert len({len(line) for line in lines[:6]}) == 1  # columns line up
    assert "| pass " in lines[2] and "1.20" in lines[2]
    assert "| FAIL " in lines[3] and "3.00" in lines[3]
    assert "| info " in lines[4]
    assert "| skipped" in lines[5]
    assert "- too slow: EXPLAIN says seq scan" in printed
    assert "- redis: skipped: Redis at redis://x does not answer" in printed


def _run(per_s: float, n: int = 2000) -> dict:
    return {
        "n": n,
        "per_s": per_s,
        "enqueue_seconds": n / (per_s * 2),
        "cpu_ms_per_job": {"enqueue": 1.0, "cluster": 2.0, "postgres": 1.0},
    }


def _throughput(bare_documented: list[float], bare_tuned: float, monitored: float, checks: dict | None = None):
    from bench.__main__ import throughput_rows

    documented = [
        {"runs": {"bare": [_run(v)]}, "settings": "bench.documented_settings", "conn_max_age": 0}
        for v in bare_documented
    ]
    project = {
        "broker": "ORM",
        "workers": 2,
        "settings": "config.settings",
        "conn_max_age": 60,
        "runs": {"bare": [_run(bare_tuned)], "monitored": [_run(monitored)]},
        "checks": checks or {"jobs": 2000, "not_completed": 0, "failed_tasks": 0, "events": {"progress": 4000}},
    }
    return throughput_rows(documented, project)


def test_throughput_is_judged_against_documented_django_q2_and_shown_against_the_tuned_one():
    judged_row, equal_footing, *_ = _throughput([30.0, 40.0], bare_tuned=500.0, monitored=140.0)

    assert (judged_row.baseline, judged_row.ours, judged_row.ratio, judged_row.passed) == (
        "35.0 jobs/s",
        "140.0 jobs/s",
        4.0,
        True,
    )
    assert (equal_footing.ratio, equal_footing.passed) == (0.28, None)  # informs, is not judged


def test_throughput_fails_when_a_monitored_job_did_not_complete_whatever_the_speed():
    checks = {"jobs": 2000, "not_completed": 3, "failed_tasks": 0, "events": {"progress": 4000}}
    [judged_row, *_] = _throughput([30.0, 30.0], bare_tuned=500.0, monitored=140.0, checks=checks)

    assert judged_row.passed is False
    assert "3 jobs not completed" in judged_row.note
