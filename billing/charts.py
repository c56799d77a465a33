"""Small server-side SVG charts for the usage page (no chart library, no CDN).

Every chart is an inline <svg role="img"> with a <title> and <desc>; the page puts the same
numbers in a table beside it. All text is escaped here, so callers pass plain strings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape  # plain strings only here; faster than django's lazy-aware wrapper

from django.utils.safestring import SafeString, mark_safe

SUCCEEDED_COLOR = "#2b8a3e"
FAILED_COLOR = "#c92a2a"
BAR_COLOR = "#3b5bdb"
AXIS_COLOR = "#98a2b3"
GRID_COLOR = "#e4e7ec"
TEXT_COLOR = "#667085"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def human_count(n: int | float | None) -> str:
    """12 → "12", 12_345 → "12.3K", 4_500_000 → "4.5M"."""
    if n is None:
        return "–"
    n = float(n)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= limit:
            value = n / limit
            text = f"{value:.1f}".rstrip("0").rstrip(".") if value < 100 else f"{value:.0f}"
            return f"{text}{suffix}"
    return f"{n:.0f}"


def human_bytes(n: int | float | None) -> str:
    """Binary units: 512 → "512 B", 1536 → "1.5 KB", 3_500_000 → "3.3 MB"."""
    if n is None:
        return "–"
    n = float(n)
    for power, unit in ((4, "TB"), (3, "GB"), (2, "MB"), (1, "KB")):
        if abs(n) >= 1024**power:
            return f"{n / 1024**power:.1f} {unit}"
    return f"{n:.0f} B"


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _nice_max(value: float) -> float:
    """The smallest 1/2/5 × 10^k at or above value (at least 1), for a readable axis."""
    if value <= 0:
        return 1
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return candidate
    return 10 ** (exponent + 1)


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _open(chart_id: str, title: str, description: str, width: int, height: int) -> list[str]:
    cid = escape(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-w{width}" id="{cid}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{cid}-title {cid}-desc" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">{escape(description)}</desc>',
    ]


def _no_data(parts: list[str], width: int, height: int, message: str) -> SafeString:
    parts.append(
        f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{TEXT_COLOR}" '
        f"{FONT}>{escape(message)}</text></svg>"
    )
    return mark_safe("".join(parts))  # noqa: S308 — every text above is escaped


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int | float]
    color: str


def stacked_bars(
    *,
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    format_value: Callable[[float], str] = human_count,
    width: int = 760,
    height: int = 240,
    empty_message: str = "No data for this range.",
) -> SafeString:
    """Vertical bars, one per label, each stacked from the series in order (bottom first)."""
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    if not labels or not any(totals):
        height = 90
        return _no_data(
            _open(chart_id, title, description, width, height), width, height, empty_message
        )
    parts = _open(chart_id, title, description, width, height)
    left, right, top, bottom = 56, 12, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max(totals))
    # Grid lines and y-axis labels at 0, ½ and the top.
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}" '
            f'stroke="{GRID_COLOR if fraction else AXIS_COLOR}"/>'
            f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" fill="{TEXT_COLOR}" '
            f"{FONT}>{escape(format_value(top_value * fraction))}</text>"
        )
    slot = plot_w / len(labels)
    bar_w = max(1.0, slot * 0.75)
    width_attr = _num(bar_w)
    # Escaped once per series, not once per bar (a year is 730 bars).
    styled = [(s.values, escape(s.color), escape(s.name)) for s in series]
    for i, label in enumerate(labels):
        x = _num(left + i * slot + (slot - bar_w) / 2)
        y = top + plot_h
        label = escape(label)
        for values, color, name in styled:
            value = values[i]
            if not value:
                continue
            h = plot_h * value / top_value
            y -= h
            parts.append(
                f'<rect x="{x}" y="{_num(y)}" width="{width_attr}" height="{_num(h)}" '
                f'fill="{color}"><title>{label} · {name}: '
                f"{escape(format_value(value))}</title></rect>"
            )
    # At most ~8 x-axis labels, evenly spaced, counted back from the last (the newest day).
    every = max(1, math.ceil(len(labels) / 8))
    for i, label in enumerate(labels):
        if (len(labels) - 1 - i) % every:
            continue
        label_x, anchor = left + i * slot + slot / 2, "middle"
        if i == len(labels) - 1 and len(labels) > 1:
            label_x, anchor = width - right, "end"  # keep the newest day's label inside the frame
        parts.append(
            f'<text x="{_num(label_x)}" y="{height - bottom + 16}" text-anchor="{anchor}" '
            f'fill="{TEXT_COLOR}" {FONT}>{escape(label)}</text>'
        )
    # Legend, top right.
    legend_x = width - right
    for s in reversed(series):
        # Room for the name at the larger font narrow screens use (app.css), not just at 11px.
        text_w = 12 * len(s.name) + 8
        legend_x -= text_w + 14
        parts.append(
            f'<rect x="{legend_x}" y="6" width="10" height="10" fill="{escape(s.color)}"/>'
            f'<text x="{legend_x + 14}" y="15" fill="{TEXT_COLOR}" {FONT}>{escape(s.name)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every text above is escaped


def horizontal_bars(
    *,
    chart_id: str,
    title: str,
    description: str,
    items: Sequence[tuple[str, int | float]],
    format_value: Callable[[float], str] = human_count,
    color: str = BAR_COLOR,
    width: int = 760,
    row_height: int = 24,
    empty_message: str = "No data for this range.",
) -> SafeString:
    """One labelled horizontal bar per item, the value written at the bar's end."""
    height = max(60, 16 + row_height * len(items))
    parts = _open(chart_id, title, description, width, height)
    if not items or not any(v for _, v in items):
        return _no_data(parts, width, height, empty_message)
    label_w, value_w = min(180, width // 3), 70
    plot_w = width - label_w - value_w
    top_value = max(v for _, v in items) or 1
    for i, (label, value) in enumerate(items):
        y = 8 + i * row_height
        w = plot_w * value / top_value
        fits = label_w // 7
        shown = label if len(label) <= fits else label[: fits - 1] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + row_height / 2 + 4}" text-anchor="end" '
            f'fill="{TEXT_COLOR}" {FONT}>{escape(shown)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{_num(max(w, 1 if value else 0))}" '
            f'height="{row_height - 6}" fill="{escape(color)}"><title>{escape(label)}: '
            f"{escape(format_value(value))}</title></rect>"
            f'<text x="{_num(label_w + w + 6)}" y="{y + row_height / 2 + 4}" '
            f'fill="{TEXT_COLOR}" {FONT}>{escape(format_value(value))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every text above is escaped


def sparkline(
    *, chart_id: str, title: str, values: Sequence[int | float], width: int = 160, height: int = 28
) -> SafeString:
    """A tiny line of values over time, for a table cell (its numbers are in the table)."""
    cid = escape(chart_id)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{cid}" class="sparkline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{cid}-title"><title id="{cid}-title">{escape(title)}</title>'
    ]
    top_value = max(values, default=0)
    if top_value and len(values) > 1:
        step = (width - 2) / (len(values) - 1)
        scale = (height - 4) / top_value
        base = height - 2
        # One %-format per point (a 366-day line × 50 workspaces is 18k points per page).
        points = " ".join(
            "%.1f,%.1f" % (1 + i * step, base - v * scale)  # noqa: UP031 — fastest here
            for i, v in enumerate(values)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{BAR_COLOR}" stroke-width="1.5"/>'
        )
    else:
        parts.append(
            f'<line x1="1" x2="{width - 1}" y1="{height - 2}" y2="{height - 2}" '
            f'stroke="{GRID_COLOR}"/>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every text above is escaped
