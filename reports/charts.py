"""Small server-side SVG charts for report PDFs: no JavaScript, no external resources, fixed geometry.

WeasyPrint renders inline <svg> directly. Every label is escaped; values are plain numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

ACCENT = "#d9622b"  # warm orange, the house colour
GRID = "#eadfd6"
INK = "#3b2f2a"


def _nice_max(value: float) -> float:
    """An axis maximum at or above `value` whose four gridline steps are round (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 4.0
    raw_step = value / 4
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    return float(max(step, 1) * 4)


def _short(value: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _frame(width: int, height: int, body: str, title: str) -> SafeString:
    return mark_safe(  # noqa: S308 - every interpolated label is escaped above
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'font-family="Liberation Sans, DejaVu Sans, sans-serif">{body}</svg>'
    )


def _axes(*, width: int, height: int, left: int, bottom: int, top: int, y_max: float) -> list[str]:
    parts = []
    plot_h = height - bottom - top
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 3:.1f}" font-size="8" text-anchor="end" fill="{INK}">'
            f"{escape(_short(y_max * i / 4))}</text>"
        )
    return parts


def line_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str = "",
    width: int = 520,
    height: int = 160,
    color: str = ACCENT,
) -> SafeString:
    """A line chart with a soft area fill; `labels` are x-axis labels (a few are shown)."""
    left, bottom, top = 44, 22, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    y_max = _nice_max(max(values, default=0))
    parts = _axes(width=width, height=height, left=left, bottom=bottom, top=top, y_max=y_max)
    n = len(values)
    if n:
        step = plot_w / max(n - 1, 1)
        points = [(left + i * step, top + plot_h - plot_h * (v / y_max)) for i, v in enumerate(values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        base = top + plot_h
        area = f"{points[0][0]:.1f},{base:.1f} {path} {points[-1][0]:.1f},{base:.1f}"
        parts.append(f'<polygon points="{area}" fill="{escape(color)}" fill-opacity="0.12"/>')
        parts.append(f'<polyline points="{path}" fill="none" stroke="{escape(color)}" stroke-width="1.8"/>')
        if n <= 31:
            parts.extend(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.8" fill="{escape(color)}"/>' for x, y in points
            )
        every = max(1, n // 6)
        for i in range(0, n, every):
            parts.append(
                f'<text x="{points[i][0]:.1f}" y="{height - 6}" font-size="8" text-anchor="middle" '
                f'fill="{INK}">{escape(labels[i])}</text>'
            )
    return _frame(width, height, "".join(parts), title)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str = "",
    width: int = 520,
    height: int = 160,
    color: str = ACCENT,
) -> SafeString:
    """Vertical bars, one per label (labels shortened to fit)."""
    left, bottom, top = 44, 22, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    y_max = _nice_max(max(values, default=0))
    parts = _axes(width=width, height=height, left=left, bottom=bottom, top=top, y_max=y_max)
    n = len(values)
    if n:
        slot = plot_w / n
        bar_w = max(1.0, slot * 0.7)
        every = max(1, n // 8)
        for i, value in enumerate(values):
            h = plot_h * (value / y_max)
            x = left + i * slot + (slot - bar_w) / 2
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{escape(color)}" rx="1"/>'
            )
            if i % every == 0:
                label = labels[i] if len(labels[i]) <= 12 else labels[i][:11] + "…"
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{height - 6}" font-size="8" text-anchor="middle" '
                    f'fill="{INK}">{escape(label)}</text>'
                )
    return _frame(width, height, "".join(parts), title)
