"""The SVG chart helper: axes with units, legends that do not rely on colour, exact values on hover."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from monitoring import charts
from monitoring.charts import COUNT, MS, PERCENT, SECONDS, Series

START = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


def minutes(n: int) -> list[datetime]:
    return [START + timedelta(minutes=i) for i in range(n)]


def svg_of(figure: str) -> ET.Element:
    """The chart's <svg> parsed as XML (so the markup is well formed, too)."""
    return ET.fromstring(re.search(r'<svg class="chart-svg".*?</svg>', figure, re.S).group(0))


def tooltips(svg: ET.Element) -> list[str]:
    return [rect.find("title").text for rect in svg.iter("rect") if rect.get("class") == "hit"]


def test_units_write_values_as_people_read_them():
    assert [MS.format(v) for v in (0, 0.14, 2.5, 250.4, 1500, 125_000)] == ["0 ms", "0.1 ms", "2.5 ms", "250 ms", "1.5 s", "2m 05s"]
    assert [PERCENT.format(v) for v in (100, 97.53, 0)] == ["100 %", "97.5 %", "0 %"]
    assert [COUNT.format(v) for v in (3, 1250, 2.5)] == ["3", "1,250", "2.5"]
    assert SECONDS.format(300) == "5m 00s"
    assert MS.format(None) == "no data"


def test_value_ticks_are_round_numbers_reaching_the_highest_value():
    assert charts.nice_ticks(1234) == [0, 500, 1000, 1500]
    assert charts.nice_ticks(3, integer=True) == [0, 1, 2, 3]
    assert charts.nice_ticks(7, integer=True) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(0.3) == [0, 0.1, 0.2, 0.3]
    assert charts.nice_ticks(0, integer=True) == [0, 1]  # an empty chart still has a scale


def test_time_ticks_fall_on_round_times_and_name_the_day_when_it_changes():
    hour = charts.time_ticks(START, START + timedelta(hours=1))
    assert [charts.time_label(t, 600) for t in hour] == ["02:00", "02:10", "02:20", "02:30", "02:40", "02:50", "03:00"]
    week = charts.time_ticks(START, START + timedelta(days=7))
    assert len(week) == 7 and charts.time_label(week[0], 86400) == "Nov 30"
    assert charts.time_label(datetime(2026, 11, 30, 0, 0, tzinfo=UTC), 10800) == "Nov 30"  # midnight on a day chart


def test_a_bucket_is_named_by_the_span_it_covers():
    assert charts.bucket_label(START + timedelta(minutes=15), 60) == "Nov 29 02:15–02:16 UTC"
    assert charts.bucket_label(START + timedelta(seconds=30), 30) == "Nov 29 02:00:30–02:01:00 UTC"
    assert charts.bucket_label(datetime(2026, 11, 29, 22, 0, tzinfo=UTC), 7200) == "Nov 29 22:00–00:00 UTC"


def latency_chart(p50, p95, *, title="Execution time"):
    return charts.line_chart(
        chart_id="latency",
        title=title,
        buckets=minutes(len(p50)),
        bucket_seconds=60,
        series=[
            Series("p50", p50, tone="blue", marker="circle"),
            Series("p95", p95, tone="orange", dash="6 4", marker="square"),
        ],
        unit=MS,
        y_label="execution time",
    )


def test_a_line_chart_has_unit_ticks_a_time_axis_and_a_legend_that_does_not_rely_on_colour():
    figure = latency_chart([100, 120, 110], [300, 900, 400])
    svg = svg_of(figure)

    ticks = [t.text for t in svg.iter("text") if t.get("class") == "tick"]
    assert ticks[:4] == ["0 ms", "250 ms", "500 ms", "750 ms"] and "1.0 s" in ticks  # 900 ms needs the 1 s line
    assert ticks[-4:] == ["02:00", "02:01", "02:02", "02:03"]  # the three buckets' whole span
    assert [t.text for t in svg.iter("text") if t.get("class") == "axis-title"] == ["execution time", "time (UTC)"]
    lines = [p for p in svg.iter("polyline")]
    assert [line.get("stroke-dasharray") for line in lines] == [None, "6 4"]  # p95 dashed: told apart without colour
    legend = figure.split("<ul class=\"chart-legend\">")[1].split("</ul>")[0]
    assert "p50</li>" in legend and "p95</li>" in legend and 'stroke-dasharray="6 4"' in legend and "<rect" in legend


def test_every_bucket_has_a_tooltip_with_exact_values_and_the_chart_has_a_text_description():
    svg = svg_of(latency_chart([100, None, 110], [300, None, 1500]))
    assert tooltips(svg) == [
        "Nov 29 02:00–02:01 UTC\np50: 100 ms\np95: 300 ms",
        "Nov 29 02:01–02:02 UTC\np50: no data\np95: no data",
        "Nov 29 02:02–02:03 UTC\np50: 110 ms\np95: 1.5 s",
    ]
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == "latency-title latency-desc"
    assert svg.find("desc").text == "p50: from 100 ms to 110 ms; p95: from 300 ms to 1.5 s."


def test_a_bucket_without_data_breaks_the_line_and_a_lone_point_still_shows():
    values = [100, 110, None, 120] + [None] * 70 + [130, 140]  # over 60 buckets: markers only where alone
    svg = svg_of(latency_chart(values, [None] * len(values)))
    assert len(list(svg.iter("polyline"))) == 2
    markers = [m for m in svg.iter() if m.get("class", "").startswith("marker")]
    assert len(markers) == 1  # 120, between two gaps


def test_the_same_numbers_come_as_a_table_of_the_buckets_with_data():
    figure = latency_chart([100, None, 110], [300, None, 400])
    # An id, so that a poll replacing the chart keeps the table open (dashboard.js).
    table = figure.split('<details class="chart-data" id="latency-data">')[1]
    assert "<summary>Execution time as a table</summary>" in table
    assert table.count("<tr><th scope=\"row\">") == 2
    assert '<th scope="row">Nov 29 02:02–02:03 UTC</th><td class="num">110 ms</td><td class="num">400 ms</td>' in table


def test_stacked_bars_sit_on_each_other_and_striped_layers_are_told_apart_without_colour():
    figure = charts.stacked_bar_chart(
        chart_id="done",
        title="Jobs finished per 1 min",
        buckets=minutes(2),
        bucket_seconds=60,
        series=[Series("succeeded", [3, 0], tone="green"), Series("failed", [1, 4], tone="red", pattern="stripes")],
        unit=COUNT,
        y_label="jobs",
    )
    svg = svg_of(figure)
    bars = [r for r in svg.iter("rect") if (r.get("class") or "").startswith("bar")]
    assert [r.get("class") for r in bars] == ["bar tone-green", "bar tone-red", "bar tone-red"]
    succeeded, failed_first, failed_second = bars
    assert float(failed_first.get("y")) + float(failed_first.get("height")) == float(succeeded.get("y"))  # stacked
    assert float(failed_second.get("height")) == float(succeeded.get("height")) + float(failed_first.get("height"))
    striped = [r for r in svg.iter("rect") if r.get("fill") == "url(#done-stripes)"]
    assert len(striped) == 2
    assert svg.find("desc").text == "succeeded: 3 in total, at most 3 a bucket; failed: 5 in total, at most 4 a bucket."
    assert 'fill="url(#done-stripes)"' in figure.split("chart-legend")[1].split("</ul>")[0]  # the legend shows it too
    assert tooltips(svg)[1] == "Nov 29 02:01–02:02 UTC\nsucceeded: 0\nfailed: 4"


def test_an_empty_chart_says_so_and_has_no_table():
    figure = charts.stacked_bar_chart(
        chart_id="empty",
        title="Nothing",
        buckets=minutes(3),
        bucket_seconds=60,
        series=[Series("failed", [0, 0, 0])],
        unit=COUNT,
        y_label="jobs",
    )
    svg = svg_of(figure)
    assert [t.text for t in svg.iter("text") if t.get("class") == "chart-empty"] == ["No data in this timeframe"]
    assert svg.find("desc").text == "No data in this timeframe."
    assert "<details" not in figure


def test_a_percent_chart_runs_from_0_to_100():
    figure = charts.line_chart(
        chart_id="rate",
        title="Success rate",
        buckets=minutes(2),
        bucket_seconds=60,
        series=[Series("success", [50.0, 100.0])],
        unit=PERCENT,
        y_label="success rate",
        y_max=100,
    )
    ticks = [t.text for t in svg_of(figure).iter("text") if t.get("class") == "tick"]
    assert ticks[:5] == ["0 %", "25 %", "50 %", "75 %", "100 %"]


def test_text_in_a_chart_is_escaped():
    figure = latency_chart([1], [2], title="<script>alert(1)</script>")
    assert "<script>" not in figure
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in figure


def test_a_sparkline_marks_warnings_and_criticals_and_gives_each_point_on_hover():
    points = [
        (START, 10.0, "healthy"),
        (START + timedelta(minutes=1), 1500.0, "warning"),
        (START + timedelta(minutes=2), 5000.0, "critical"),
    ]
    svg = ET.fromstring(str(charts.sparkline(points, unit=MS, label="ai_matching")))
    assert svg.get("aria-label") == "ai_matching: 3 checks, from 10 ms to 5.0 s"
    assert len(list(svg.iter("polyline"))) == 1
    assert [m.tag for m in svg.iter() if m.get("class", "").startswith("marker")] == ["polygon", "rect"]
    assert tooltips(svg) == [
        "Nov 29 02:00:00 UTC: 10 ms (healthy)",
        "Nov 29 02:01:00 UTC: 1.5 s (warning)",
        "Nov 29 02:02:00 UTC: 5.0 s (critical)",
    ]
    assert "no history yet" in charts.sparkline([], unit=MS, label="x")


def test_a_share_bar_is_as_long_as_its_share():
    bar = ET.fromstring(str(charts.share_bar(0.25, width=80)))
    assert [r.get("width") for r in bar.iter("rect")] == ["80", "20.0"]
    assert ET.fromstring(str(charts.share_bar(1.7, width=80))).findall("rect")[1].get("width") == "80.0"
    assert charts.share_bar(None) == ""
