"""Small inline SVG charts: no JavaScript, no CDN, readable with images off (each has a <title>).

Every text that reaches the SVG is escaped; the result is returned as ``markupsafe.Markup`` so Jinja
inserts it as is.

>>> svg = bar_chart([("a", 1.0), ("b", 2.0)], highlight=0, title="distances")
>>> svg.startswith("<svg") and svg.count("<rect") == 2
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

__all__ = ["PALETTE", "bar_chart", "diverging_chart", "scatter_chart"]

# Okabe–Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_LABEL_W, _BAR_H, _GAP, _WIDTH = 190, 22, 6, 620


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" '
        f'font-size="12"><title>{escape(title)}</title>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def bar_chart(items: Sequence[tuple[str, float]], *, highlight: int | None, title: str) -> Markup:
    """Horizontal bars from 0, one per ``(label, value)``; bar ``highlight`` drawn in the accent colour."""
    top = max((_finite(v) for _, v in items), default=0.0) or 1.0
    span = _WIDTH - _LABEL_W - 70
    body = []
    for i, (label, value) in enumerate(items):
        y = i * (_BAR_H + _GAP)
        w = max(1.0, span * _finite(value) / top)
        colour = PALETTE[1] if i == highlight else PALETTE[0]
        body.append(
            f'<text x="{_LABEL_W - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{_LABEL_W}" y="{y}" width="{w:.1f}" height="{_BAR_H}" fill="{colour}">'
            f"<title>{escape(label)}: {value:.3f}</title></rect>"
            f'<text x="{_LABEL_W + w + 4:.1f}" y="{y + 15}">{value:.3f}</text>'
        )
    return _svg(_WIDTH, max(1, len(items)) * (_BAR_H + _GAP), title, body)


def diverging_chart(items: Sequence[tuple[str, float]], *, title: str) -> Markup:
    """Bars left (negative) or right (positive) of a centre line, one per ``(label, value)``."""
    top = max((abs(_finite(v)) for _, v in items), default=0.0) or 1.0
    half = (_WIDTH - _LABEL_W - 20) / 2
    centre = _LABEL_W + half
    body = []
    for i, (label, value) in enumerate(items):
        y = i * (_BAR_H + _GAP)
        w = half * abs(_finite(value)) / top
        x = centre if value >= 0 else centre - w
        colour = PALETTE[2] if value >= 0 else PALETTE[5]
        body.append(
            f'<text x="{_LABEL_W - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1.0):.1f}" height="{_BAR_H}" fill="{colour}">'
            f"<title>{escape(label)}: {value:+.3f}</title></rect>"
        )
    height = max(1, len(items)) * (_BAR_H + _GAP)
    body.append(f'<line x1="{centre:.1f}" x2="{centre:.1f}" y1="0" y2="{height}" stroke="#444"/>')
    return _svg(_WIDTH, height, title, body)


def scatter_chart(
    x: Sequence[float],
    y: Sequence[float],
    groups: Sequence[int],
    names: Sequence[str],
    *,
    title: str,
    ids: Sequence[int] | None = None,
) -> Markup:
    """Points coloured by group (0..len(names)-1), with a legend naming each group ``ids[group]: name``
    (``ids``: the segment ids the groups are published as; default the group numbers); axes scaled to
    the data."""
    width, height, pad, legend_h = 620, 440, 20, 22 * ((len(names) + 2) // 3)
    xs = [_finite(v) for v in x] or [0.0]
    ys = [_finite(v) for v in y] or [0.0]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (width - 2 * pad) / ((x1 - x0) or 1.0)
    sy = (height - 2 * pad) / ((y1 - y0) or 1.0)
    body = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa" stroke="#ddd"/>']
    for px, py, group in zip(xs, ys, groups, strict=False):
        cx, cy = pad + (px - x0) * sx, height - pad - (py - y0) * sy
        colour = PALETTE[int(group) % len(PALETTE)]
        body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.2" fill="{colour}" fill-opacity="0.6"/>')
    for i, name in enumerate(names):
        lx, ly = 10 + (i % 3) * 205, height + 16 + (i // 3) * 22
        body.append(
            f'<circle cx="{lx}" cy="{ly - 4}" r="5" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{lx + 10}" y="{ly}">{i if ids is None else ids[i]}: {escape(name)}</text>'
        )
    return _svg(width, height + legend_h + 6, title, body)
