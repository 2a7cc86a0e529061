"""Server-rendered SVG charts for the staff pages: one small pure function per chart type, no JS, no images.

Labels and titles are user data (university names, session titles), so every piece of text is XML-escaped
before it goes into the SVG, which the templates insert unescaped.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

WIDTH = 640
BAR_HEIGHT = 22
GAP = 8
LABEL_WIDTH = 180
VALUE_WIDTH = 110
TOP = 36
MAX_LABEL = 24  # characters; longer labels are cut with an ellipsis (the full text is in the <title> tooltip)


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _format(value: float, unit: str) -> str:
    number = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{number} {unit}".strip()


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, unit: str = "") -> str:
    """A horizontal bar chart as an <svg> string; bars scale to the largest value. Empty input gives a chart
    that says so. Negative or non-finite values are drawn as zero-length bars (amounts are never negative)."""
    if len(labels) != len(values):
        raise ValueError(f"bar_chart needs one value per label ({len(labels)} labels, {len(values)} values)")
    clean = [v if math.isfinite(v) and v > 0 else 0.0 for v in map(float, values)]
    height = TOP + max(len(labels), 1) * (BAR_HEIGHT + GAP) + GAP
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    top = max(clean, default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" aria-label="{escape(title, {chr(34): "&quot;"})}">',
        f'<text class="chart-title" x="0" y="20" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    if not labels:
        parts.append(f'<text x="0" y="{TOP + BAR_HEIGHT - 6}" font-size="13" fill="#666">暂无数据</text>')
    for i, (label, value, raw) in enumerate(zip(labels, clean, values)):
        y = TOP + i * (BAR_HEIGHT + GAP)
        width = round(span * value / top, 1)
        text = escape(str(label))
        parts += [
            f'<g class="bar-row"><title>{text}: {escape(_format(float(raw), unit))}</title>',
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR_HEIGHT - 6}" font-size="13" text-anchor="end">{escape(_short(str(label)))}</text>',
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y}" width="{width}" height="{BAR_HEIGHT}" fill="#3b6ea5"/>',
            f'<text x="{LABEL_WIDTH + width + 6}" y="{y + BAR_HEIGHT - 6}" font-size="13">{escape(_format(value, unit))}</text>',
            "</g>",
        ]
    parts.append("</svg>")
    return "\n".join(parts)
