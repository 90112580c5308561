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
