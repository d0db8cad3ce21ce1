"""Charts as inline vector SVG, written by our own code (no raster images, no plotting library).

Every label is escaped with :func:`markupsafe.escape` before it is placed in the markup, and only the
finished string is wrapped in :class:`~markupsafe.Markup` (so the template's autoescape leaves it as SVG).
Numbers are formatted here, never taken as text from the data. Nothing in the SVG refers to a URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

WIDTH = 480
BAR_HEIGHT = 14
GAP = 6
LABEL_WIDTH = 150
VALUE_WIDTH = 70
PALETTE = ("#1f4e79", "#2e75b6", "#9dc3e6", "#c55a11", "#f4b183", "#548235", "#a9d18e", "#7f6000", "#bfbfbf")
MAX_LABEL = 28


def _label(text: str) -> str:
    short = text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"
    return str(escape(short))


def _group(value: int | Decimal) -> str:
    return f"{value:,}"


def _svg_open(title: str, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="Report Sans" font-size="8" '
        f'role="img" aria-label="{escape(title)}">'
    )


def bar_chart(title: str, bars: Sequence[tuple[str, int | Decimal]]) -> Markup:
    """A horizontal bar chart: one bar per (label, value), scaled to the largest value."""
    top = max((value for _, value in bars), default=0)
    plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    height = len(bars) * (BAR_HEIGHT + GAP) + GAP
    parts = [_svg_open(title, height)]
    for n, (label, value) in enumerate(bars):
        y = GAP + n * (BAR_HEIGHT + GAP)
        width = 0 if top <= 0 else round(float(value) / float(top) * plot, 2)
        middle = y + BAR_HEIGHT - 3
        parts.append(f'<text x="{LABEL_WIDTH - 6}" y="{middle}" text-anchor="end">{_label(label)}</text>')
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width}" height="{BAR_HEIGHT}" fill="{PALETTE[0]}"/>'
        )
        parts.append(f'<text x="{LABEL_WIDTH + width + 4}" y="{middle}">{_group(value)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated label was escaped above


def share_chart(title: str, shares: Sequence[tuple[str, int]], *, others_after: int = 8) -> Markup:
    """A 100 % stacked bar with a legend: the shares of a whole (e.g. messages per model)."""
    items = list(shares[:others_after])
    rest = sum(value for _, value in shares[others_after:])
    if rest:
        items.append(("other models", rest))
    total = sum(value for _, value in items)
    legend_rows = len(items)
    height = 30 + legend_rows * (BAR_HEIGHT + 2) + GAP
    parts = [_svg_open(title, height)]
    x = 0.0
    for n, (_, value) in enumerate(items):
        width = 0.0 if total == 0 else value / total * WIDTH
        parts.append(
            f'<rect x="{round(x, 2)}" y="0" width="{round(width, 2)}" height="20" '
            f'fill="{PALETTE[n % len(PALETTE)]}"/>'
        )
        x += width
    for n, (label, value) in enumerate(items):
        y = 30 + n * (BAR_HEIGHT + 2)
        share = Decimal(0) if total == 0 else (Decimal(value) * 100 / Decimal(total)).quantize(Decimal("0.1"))
        parts.append(f'<rect x="0" y="{y}" width="10" height="10" fill="{PALETTE[n % len(PALETTE)]}"/>')
        parts.append(f'<text x="16" y="{y + 9}">{_label(label)}: {share} %</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated label was escaped above
