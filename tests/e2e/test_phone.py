"""The dashboard on a phone: 390 px wide, every link in reach without panning the page sideways."""

import pytest

from tests.e2e.conftest import log_in
from tests.factories import JobFactory

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def assert_fits_the_phone(page):
    # The page itself never scrolls sideways (wide tables scroll inside their own .table-wrap).
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    links = page.locator(".topbar a, .topbar button")
    names = links.all_inner_texts()
    assert {"Overview", "Jobs", "Performance", "Errors", "Health", "Alerts", "Log out"} <= set(names)
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], names[i]


@pytest.mark.parametrize("url", ["/", "/jobs/?view=finished"])
def test_every_nav_link_and_log_out_are_in_reach_at_390_px(page, alice, url):
    """Drill: at 390 px the page was 722-738 px wide; Errors, Health, Alerts and Log out sat at
    x=405..672, reachable only by panning the whole page."""
    JobFactory(failed=True, message="ValueError: " + "a long message " * 20)
    JobFactory(running=True, progress=40)
    page.set_viewport_size(PHONE)

    log_in(page, "alice", next_url=url)

    assert_fits_the_phone(page)
