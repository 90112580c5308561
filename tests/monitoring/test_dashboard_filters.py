"""The dashboard's number filters: what an operator reads beside the counts must agree with them."""

import pytest

from monitoring.templatetags.dashboard import percent, success_percent


@pytest.mark.parametrize(
    ("fraction", "shown"),
    [
        (0.9753, "97.5 %"),
        (1, "100 %"),
        (0, "0 %"),
        (None, "–"),
        (2499 / 2500, "99.96 %"),  # never "100 %" while one failed
        (1 / 2500, "0.04 %"),  # never "0 %" while one did
        (1 - 1e-7, "> 99.99 %"),  # past the digits shown: still not "100 %"
        (1e-7, "< 0.01 %"),
    ],
)
def test_percent_shows_a_share_short_of_all_or_above_none_as_such(fraction, shown):
    assert percent(fraction) == shown


def test_the_success_rate_is_read_from_the_counts_not_the_rounded_ratio():
    # 20,000 completed and 1 failed for good: the API's success_rate (4 places) is 1.0.
    outcomes = {"succeeded": 20_000, "failed": 1, "success_rate": 1.0}

    assert success_percent(outcomes) == "99.995 %"
    assert success_percent({"succeeded": 0, "failed": 0, "success_rate": None}) == "–"
