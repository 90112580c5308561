"""Charts drawn on the server as inline SVG: no script, no network, readable without colour.

Every chart has axes whose ticks carry their unit, a legend whose swatches repeat each series'
dash pattern, marker or hatching (colour is never the only cue), a <title> tooltip on every
bucket with its exact values, a text description for screen readers, and the same numbers as
a table under a <details>. Colours come from the dashboard's CSS variables (`tone-<name>`
classes), so dark mode needs nothing here.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from monitoring.templatetags.dashboard import duration

# The viewBox: text is drawn at these units, so give a chart about the width it gets on the page
# (WIDTH for a third of a laptop screen, `width=` wider for a full-width one).
WIDTH, HEIGHT = 480, 220
LEFT, RIGHT, TOP, BOTTOM = 58, 22, 24, 30
# Time axis: the first of these (seconds) that gives at most MAX_TIME_TICKS ticks.
TIME_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 432000, 604800)
MAX_TIME_TICKS = 8
# Below this many buckets every point gets a marker; above it only isolated ones do.
MARKERS_UP_TO = 60


# --- units ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """How a value of a chart is written: on its ticks, in tooltips and tables."""

    kind: str  # "ms", "seconds", "percent" or "count"

    def format(self, value) -> str:
        if value is None:
            return "no data"
        if self.kind == "ms":
            if value >= 1000:
                return duration(value / 1000)
            # A database answers in tenths of a millisecond: "0 ms" would hide it.
            return f"{value:.1f} ms".replace(".0 ms", " ms") if value < 10 else f"{value:.0f} ms"
        if self.kind == "seconds":
            return duration(value)
        if self.kind == "percent":
            return f"{value:.1f} %".replace(".0 %", " %")
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


MS, SECONDS, PERCENT, COUNT = Unit("ms"), Unit("seconds"), Unit("percent"), Unit("count")


# --- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One line, or one layer of stacked bars: a value (or None: no data) per bucket."""

    name: str
    values: list
    tone: str = "blue"  # blue, red, green, amber, violet, slate (the dashboard's palettes)
    dash: str = ""  # SVG stroke-dasharray of a line, e.g. "6 4"
    marker: str = "circle"  # circle, square or diamond: tells lines apart where they cross
    pattern: str = ""  # bars: "stripes" or "dots" over the colour, so layers differ without it


def nice_ticks(highest: float, *, count: int = 4, integer: bool = False) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 × 10^k) up to the first at or above `highest`."""
    if not highest or highest <= 0:
        return [0, 1] if integer else [0, 1.0]
    raw = highest / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1, math.ceil(step))
    top = math.ceil(highest / step - 1e-9) * step
    return [round(i * step, 10) for i in range(int(round(top / step)) + 1)]


def time_ticks(start: datetime, end: datetime) -> list[datetime]:
    """Round times (on the UTC clock) inside [start, end], at most MAX_TIME_TICKS of them."""
    first, last = start.timestamp(), end.timestamp()
    span = last - first
    step = next((s for s in TIME_STEPS if span / s <= MAX_TIME_TICKS), TIME_STEPS[-1])
    tick = math.ceil(first / step) * step
    ticks = []
    while tick <= last:
        ticks.append(datetime.fromtimestamp(tick, UTC))
        tick += step
    return ticks


def time_label(moment: datetime, step_seconds: float) -> str:
    """"14:30" within a day; the date where a day starts or when ticks are days apart."""
    moment = moment.astimezone(UTC)
    if step_seconds >= 86400 or (moment.hour == 0 and moment.minute == 0):
        return f"{moment:%b} {moment.day}"
    return f"{moment:%H:%M}"


def bucket_label(start: datetime, size: int) -> str:
    """"Nov 29 02:15–02:16 UTC" (the bucket's span, so a tooltip says what it covers)."""
    start = start.astimezone(UTC)
    end = start + timedelta(seconds=size)
    seconds = ":%S" if size % 60 else ""
    end_format = f"%H:%M{seconds}" if end.date() == start.date() or end == _midnight(end) else f"%b {end.day} %H:%M"
    return f"{start:%b} {start.day} {start.strftime('%H:%M' + seconds)}–{end.strftime(end_format)} UTC"


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


# --- time charts ------------------------------------------------------------------------------


@dataclass
class _Frame:
    """Where things go: buckets across, values up."""

    buckets: list[datetime]
    size: int
    ticks: list[float]
    width: int = WIDTH

    @property
    def start(self) -> float:
        return self.buckets[0].timestamp()

    @property
    def end(self) -> float:
        return self.buckets[-1].timestamp() + self.size

    @property
    def plot_width(self) -> float:
        return self.width - LEFT - RIGHT

    @property
    def plot_height(self) -> float:
        return HEIGHT - TOP - BOTTOM

    def x_at(self, seconds: float) -> float:
        return LEFT + (seconds - self.start) / (self.end - self.start) * self.plot_width

    def bucket_x(self, index: int) -> tuple[float, float]:
        """Left edge and width of bucket `index`."""
        left = self.x_at(self.buckets[index].timestamp())
        return left, self.x_at(self.buckets[index].timestamp() + self.size) - left

    def y_at(self, value: float) -> float:
        return TOP + self.plot_height * (1 - value / self.ticks[-1])


def line_chart(
    *,
    chart_id: str,
    title: str,
    buckets: list[datetime],
    bucket_seconds: int,
    series: list[Series],
    unit: Unit,
    y_label: str,
    y_max: float | None = None,
    width: int = WIDTH,
) -> SafeString:
    """Lines over time, one point per bucket (at its middle); a gap where a bucket has no data."""
    present = [v for s in series for v in s.values if v is not None]
    ticks = _value_ticks(y_max or max(present, default=0), unit)
    frame = _Frame(buckets, bucket_seconds, ticks, width)
    shapes = []
    for s in series:
        points = [
            (frame.x_at(b.timestamp() + bucket_seconds / 2), None if v is None else frame.y_at(v), v)
            for b, v in zip(buckets, s.values)
        ]
        for run in _runs(points):
            if len(run) > 1:
                coords = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in run)
                dash = format_html(' stroke-dasharray="{}"', s.dash) if s.dash else ""
                shapes.append(format_html('<polyline class="line tone-{}" points="{}"{}/>', s.tone, coords, dash))
            if len(run) == 1 or len(buckets) <= MARKERS_UP_TO:
                shapes.extend(_marker(s.marker, s.tone, x, y) for x, y, _ in run)
    return _figure(
        chart_id=chart_id,
        title=title,
        frame=frame,
        series=series,
        unit=unit,
        y_label=y_label,
        shapes=shapes,
        kind="line",
        empty=not present,
    )


def stacked_bar_chart(
    *,
    chart_id: str,
    title: str,
    buckets: list[datetime],
    bucket_seconds: int,
    series: list[Series],
    unit: Unit,
    y_label: str,
    width: int = WIDTH,
) -> SafeString:
    """Bars over time, one per bucket, its layers stacked in the order of `series`."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(buckets))]
    ticks = _value_ticks(max(totals, default=0), unit)
    frame = _Frame(buckets, bucket_seconds, ticks, width)
    shapes = []
    for index in range(len(buckets)):
        left, width = frame.bucket_x(index)
        gap = min(2.0, width * 0.15)
        base = 0
        for s in series:
            value = s.values[index] or 0
            if not value:
                continue
            top, bottom = frame.y_at(base + value), frame.y_at(base)
            box = (f"{left + gap / 2:.1f}", f"{top:.1f}", f"{max(width - gap, 0.5):.1f}", f"{bottom - top:.1f}")
            shapes.append(format_html('<rect class="bar tone-{}" x="{}" y="{}" width="{}" height="{}"/>', s.tone, *box))
            if s.pattern:
                pattern = (*box, chart_id, s.pattern)
                shapes.append(format_html('<rect x="{}" y="{}" width="{}" height="{}" fill="url(#{}-{})"/>', *pattern))
            base += value
    return _figure(
        chart_id=chart_id,
        title=title,
        frame=frame,
        series=series,
        unit=unit,
        y_label=y_label,
        shapes=shapes,
        kind="bar",
        empty=not any(totals),
    )


def _value_ticks(highest: float, unit: Unit) -> list[float]:
    if unit.kind == "percent":
        return [0, 25, 50, 75, 100]
    return nice_ticks(highest, integer=unit.kind == "count")


def _runs(points):
    """Consecutive points with a value: a line breaks where a bucket has none."""
    run = []
    for x, y, value in points:
        if value is None:
            if run:
                yield run
            run = []
        else:
            run.append((x, y, value))
    if run:
        yield run


def _marker(shape: str, tone: str, x: float, y: float, size: float = 3.2) -> SafeString:
    if shape == "square":
        return format_html(
            '<rect class="marker tone-{}" x="{}" y="{}" width="{}" height="{}"/>',
            tone,
            f"{x - size:.1f}",
            f"{y - size:.1f}",
            f"{2 * size:.1f}",
            f"{2 * size:.1f}",
        )
    if shape == "diamond":
        d = size * 1.3
        points = f"{x:.1f},{y - d:.1f} {x + d:.1f},{y:.1f} {x:.1f},{y + d:.1f} {x - d:.1f},{y:.1f}"
        return format_html('<polygon class="marker tone-{}" points="{}"/>', tone, points)
    return format_html('<circle class="marker tone-{}" cx="{}" cy="{}" r="{}"/>', tone, f"{x:.1f}", f"{y:.1f}", size)


def _axes(frame: _Frame, unit: Unit, y_label: str) -> list[SafeString]:
    parts = []
    grid = '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
    for tick in frame.ticks:
        y = f"{frame.y_at(tick):.1f}"
        parts.append(format_html(grid, LEFT, frame.width - RIGHT, y, y))
        tick_text = '<text class="tick" x="{}" y="{}" text-anchor="end" dy="0.32em">{}</text>'
        parts.append(format_html(tick_text, LEFT - 6, y, unit.format(tick)))
    bottom = HEIGHT - BOTTOM
    axis = '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
    parts.append(format_html(axis, LEFT, frame.width - RIGHT, bottom, bottom))
    parts.append(format_html(axis, LEFT, LEFT, TOP, bottom))
    ticks = time_ticks(frame.buckets[0], frame.buckets[-1] + timedelta(seconds=frame.size))
    step = (ticks[1] - ticks[0]).total_seconds() if len(ticks) > 1 else frame.end - frame.start
    for tick in ticks:
        x = f"{frame.x_at(tick.timestamp()):.1f}"
        parts.append(format_html(axis, x, x, bottom, bottom + 4))
        tick_text = '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>'
        parts.append(format_html(tick_text, x, bottom + 16, time_label(tick, step)))
    parts.append(format_html('<text class="axis-title" x="{}" y="{}">{}</text>', 4, 12, y_label))
    x_title = '<text class="axis-title" x="{}" y="{}" text-anchor="end">time (UTC)</text>'
    parts.append(format_html(x_title, frame.width - RIGHT, HEIGHT - 2))
    return parts


def _hit_areas(frame: _Frame, series: list[Series], unit: Unit) -> list[SafeString]:
    """A transparent column per bucket whose tooltip gives every series' exact value."""
    parts = []
    for index, bucket in enumerate(frame.buckets):
        left, width = frame.bucket_x(index)
        lines = [bucket_label(bucket, frame.size)] + [f"{s.name}: {unit.format(s.values[index])}" for s in series]
        parts.append(
            format_html(
                '<rect class="hit" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
                f"{left:.1f}",
                TOP,
                f"{width:.1f}",
                f"{frame.plot_height:.1f}",
                "\n".join(lines),
            )
        )
    return parts


def _description(series: list[Series], unit: Unit, kind: str) -> str:
    parts = []
    for s in series:
        values = [v for v in s.values if v is not None]
        if not values:
            parts.append(f"{s.name}: no data")
        elif kind == "bar":
            parts.append(f"{s.name}: {unit.format(sum(values))} in total, at most {unit.format(max(values))} a bucket")
        else:
            parts.append(f"{s.name}: from {unit.format(min(values))} to {unit.format(max(values))}")
    return "; ".join(parts) + "."


def legend(series: list[Series], *, kind: str, chart_id: str) -> SafeString:
    items = format_html_join("", "<li>{} {}</li>", ((_swatch(s, kind, chart_id), s.name) for s in series))
    return format_html('<ul class="chart-legend">{}</ul>', items)


def _swatch(s: Series, kind: str, chart_id: str) -> SafeString:
    if kind == "bar":
        # The pattern is the one defined in the chart's own <svg> (ids are document-wide).
        overlay = ""
        if s.pattern:
            overlay = format_html('<rect width="14" height="10" fill="url(#{}-{})"/>', chart_id, s.pattern)
        inner = format_html('<rect class="bar tone-{}" width="14" height="10"/>{}', s.tone, overlay)
        return format_html('<svg width="14" height="10" aria-hidden="true">{}</svg>', inner)
    dash = format_html(' stroke-dasharray="{}"', s.dash) if s.dash else ""
    line = format_html('<line class="line tone-{}" x1="0" x2="28" y1="6" y2="6"{}/>', s.tone, dash)
    inner = format_html("{}{}", line, _marker(s.marker, s.tone, 14, 6))
    return format_html('<svg width="28" height="12" aria-hidden="true">{}</svg>', inner)


def _patterns(chart_id: str) -> SafeString:
    return format_html(
        '<defs><pattern id="{}-stripes" width="5" height="5" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)">'
        '<rect class="pattern-mark" width="2" height="5"/></pattern>'
        '<pattern id="{}-dots" width="5" height="5" patternUnits="userSpaceOnUse">'
        '<circle class="pattern-mark" cx="2.5" cy="2.5" r="1.1"/></pattern></defs>',
        chart_id,
        chart_id,
    )


def _figure(*, chart_id, title, frame, series, unit, y_label, shapes, kind, empty) -> SafeString:
    description = "No data in this timeframe." if empty else _description(series, unit, kind)
    body = [_patterns(chart_id), *_axes(frame, unit, y_label), *shapes]
    if empty:
        body.append(
            format_html(
                '<text class="chart-empty" x="{}" y="{}" text-anchor="middle">No data in this timeframe</text>',
                LEFT + frame.plot_width / 2,
                TOP + frame.plot_height / 2,
            )
        )
    body.extend(_hit_areas(frame, series, unit))
    svg = format_html(
        '<svg class="chart-svg" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title {}-desc">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        frame.width,
        HEIGHT,
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        description,
        mark_safe("".join(body)),  # every part built with format_html above
    )
    return format_html(
        '<figure class="chart" id="{}"><figcaption><span class="chart-title">{}</span>{}</figcaption>{}{}</figure>',
        chart_id,
        title,
        legend(series, kind=kind, chart_id=chart_id),
        svg,
        _table(frame, series, unit, title, chart_id),
    )


def _table(frame: _Frame, series: list[Series], unit: Unit, title: str, chart_id: str) -> SafeString:
    """The chart's numbers, for exact values and for screen readers: buckets with data only. Its
    <details> has an id: a poll replacing the chart keeps it open (dashboard.js)."""
    rows = [
        (bucket, [s.values[i] for s in series])
        for i, bucket in enumerate(frame.buckets)
        if any(s.values[i] for s in series)
    ]
    if not rows:
        return SafeString("")
    head = format_html_join("", '<th scope="col" class="num">{}</th>', ((s.name,) for s in series))
    body = format_html_join(
        "",
        '<tr><th scope="row">{}</th>{}</tr>',
        (
            (
                bucket_label(bucket, frame.size),
                format_html_join("", '<td class="num">{}</td>', ((unit.format(v),) for v in values)),
            )
            for bucket, values in rows
        ),
    )
    return format_html(
        '<details class="chart-data" id="{}-data"><summary>{} as a table</summary><div class="table-wrap">'
        '<table class="table compact"><thead><tr><th scope="col">Time (UTC)</th>{}</tr></thead>'
        "<tbody>{}</tbody></table></div>"
        '<p class="muted small">Buckets without data are left out.</p></details>',
        chart_id,
        title,
        head,
        body,
    )


# --- small inline pictures ------------------------------------------------------------------------


def sparkline(
    points: list[tuple[datetime, float, str]], *, unit: Unit, label: str, width: int = 180, height: int = 34
) -> SafeString:
    """A component's recent values as a small line; not-healthy checks marked (a triangle for
    warning, a square for critical) and every point's time, value and status in a tooltip."""
    if not points:
        return SafeString('<span class="muted small">no history yet</span>')
    values = [value for _, value, _ in points]
    low, high = min(values), max(values)
    if high == low:
        low, high = (low - 1, high + 1) if low else (0, 1)
    pad = 4
    start, end = points[0][0].timestamp(), points[-1][0].timestamp()

    def x_at(moment):
        return pad + (moment.timestamp() - start) / ((end - start) or 1) * (width - 2 * pad)

    def y_at(value):
        return pad + (1 - (value - low) / (high - low)) * (height - 2 * pad)

    coords = [(x_at(moment), y_at(value)) for moment, value, _ in points]
    parts = []
    if len(coords) > 1:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(format_html('<polyline class="line tone-slate" points="{}"/>', line))
    for (x, y), (_, _, status) in zip(coords, points):
        if status == "critical":
            parts.append(_marker("square", "red", x, y, 2.6))
        elif status == "warning":
            parts.append(
                format_html(
                    '<polygon class="marker tone-amber" points="{}"/>',
                    f"{x:.1f},{y - 3.4:.1f} {x + 3.2:.1f},{y + 2.6:.1f} {x - 3.2:.1f},{y + 2.6:.1f}",
                )
            )
    if len(points) == 1:
        parts.append(_marker("circle", "slate", *coords[0], 2.4))
    slot = (width - 2 * pad) / max(len(points) - 1, 1)
    for (x, _), (moment, value, status) in zip(coords, points):
        tip = f"{moment.astimezone(UTC):%b %d %H:%M:%S} UTC: {unit.format(value)} ({status})"
        parts.append(
            format_html(
                '<rect class="hit" x="{}" y="0" width="{}" height="{}"><title>{}</title></rect>',
                f"{x - slot / 2:.1f}",
                f"{max(slot, 1):.1f}",
                height,
                tip,
            )
        )
    summary = f"{label}: {len(points)} checks, from {unit.format(min(values))} to {unit.format(max(values))}"
    return format_html(
        '<svg class="sparkline" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">{}</svg>',
        width,
        height,
        width,
        height,
        summary,
        mark_safe("".join(parts)),  # every part built with format_html above
    )


def share_bar(fraction: float | None, *, tone: str = "blue", width: int = 120) -> SafeString:
    """A horizontal bar for a share (0..1) in a table cell; the number is always written next to it."""
    if fraction is None:
        return SafeString("")
    fraction = min(max(float(fraction), 0.0), 1.0)
    return format_html(
        '<svg class="share-bar" width="{}" height="8" aria-hidden="true">'
        '<rect class="track" width="{}" height="8" rx="2"/>'
        '<rect class="bar tone-{}" width="{}" height="8" rx="2"/></svg>',
        width,
        width,
        tone,
        f"{fraction * width:.1f}",
    )
