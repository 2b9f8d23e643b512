"""Small inline SVG charts for the monthly report.

Why SVG and not Plotly here: the report is a file people mail, archive and
print. Inline SVG needs no script (mail clients and PDF printing never run
one), keeps the file around 100 KB instead of the 4.6 MB of plotly.js, and
prints sharp at any size. The dashboard keeps Plotly for interaction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#1f5fa8", "#e07b39", "#3a9d5d", "#b8479b", "#c9a227", "#7f7f7f", "#2bb3c0")
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 120, 12, 28


def _ticks(low: float, high: float) -> list[float]:
    if high <= low:
        high = low + 1.0
    step = 10 ** math.floor(math.log10((high - low) / 4))
    for mult in (1, 2, 5, 10):
        if (high - low) / (step * mult) <= 5:
            step *= mult
            break
    start = math.floor(low / step) * step
    return [start + i * step for i in range(int((high - start) / step) + 2)]


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.2g}"


def line_chart(labels: Sequence[str], series: dict[str, Sequence[float | None]], title: str) -> str:
    """One line per series over ``labels`` (months); gaps for missing values."""
    values = [v for s in series.values() for v in s if v is not None and not math.isnan(v)]
    if not values or not labels:
        return ""
    ticks = _ticks(min(values), max(values))
    low, high = ticks[0], ticks[-1]
    span_x = WIDTH - LEFT - RIGHT
    span_y = HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (span_x * i / max(1, len(labels) - 1))

    def y(v: float) -> float:
        return TOP + span_y * (1 - (v - low) / (high - low))

    parts = [_frame(title)]
    for tick in ticks:
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + span_x}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#e3e3e3"/><text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
            f"{_fmt(tick)}</text>"
        )
    for i, label in enumerate(labels):
        if i % max(1, len(labels) // 6) == 0 or i == len(labels) - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(label)}</text>'
            )
    for k, (name, points) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        path: list[str] = []
        for i, v in enumerate(points):
            if v is None or math.isnan(v):
                continue
            path.append(f"{'M' if not path else 'L'}{x(i):.1f},{y(v):.1f}")
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{color}"/>')
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.append(_legend(k, name, color))
    parts.append("</svg>")
    return "".join(parts)


def stacked_bars(labels: Sequence[str], series: dict[str, Sequence[float]], title: str) -> str:
    """Stacked columns per label (month), one colour per series (lifecycle stage)."""
    if not labels or not series:
        return ""
    totals = [sum(float(s[i]) for s in series.values()) for i in range(len(labels))]
    top = max(totals) or 1.0
    span_x = WIDTH - LEFT - RIGHT
    span_y = HEIGHT - TOP - BOTTOM
    bar = span_x / len(labels) * 0.7
    parts = [_frame(title)]
    for tick in _ticks(0, top):
        if tick > top * 1.05:
            break
        ty = TOP + span_y * (1 - tick / top)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + span_x}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#e3e3e3"/>'
            f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>'
        )
    for i, label in enumerate(labels):
        cx = LEFT + span_x * (i + 0.5) / len(labels)
        base = 0.0
        for k, points in enumerate(series.values()):
            v = float(points[i])
            h = span_y * v / top
            yy = TOP + span_y * (1 - (base + v) / top)
            parts.append(
                f'<rect x="{cx - bar / 2:.1f}" y="{yy:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[k % len(PALETTE)]}"/>'
            )
            base += v
        if i % max(1, len(labels) // 6) == 0 or i == len(labels) - 1:
            parts.append(
                f'<text x="{cx:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(label)}</text>'
            )
    for k, name in enumerate(series):
        parts.append(_legend(k, name, PALETTE[k % len(PALETTE)]))
    parts.append("</svg>")
    return "".join(parts)


def _frame(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="chart">'
        f"<title>{escape(title)}</title>"
    )


def _legend(k: int, name: str, color: str) -> str:
    ly = TOP + 14 * k + 6
    lx = WIDTH - RIGHT + 12
    return (
        f'<rect x="{lx}" y="{ly - 8}" width="10" height="10" fill="{color}"/>'
        f'<text x="{lx + 14}" y="{ly + 1}">{escape(name)}</text>'
    )
