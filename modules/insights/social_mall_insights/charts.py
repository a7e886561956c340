"""Server-drawn SVG for the insights pages (no JavaScript, no CDN; presentation attributes
only, so the console's CSP needs no inline styles)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

PALETTE = ("#2f7d5b", "#d9822b", "#3867d6", "#a55eea", "#eb3b5a", "#20bf6b")


def heat_class(v: float | None) -> str:
    """A heat-map cell's class: h0 (0) … h9 (≥ 90 %, or the top of a 0–50 % scale)."""
    if v is None:
        return "na"
    return f"h{min(9, int(v * 20))}"   # 5 % steps: repurchase rates rarely pass 50 %


def line_chart(x_labels: Sequence[str], series: Mapping[str, Sequence[int | None]], *, title: str,
               width: int = 560, height: int = 220, fmt_yuan: bool = True) -> str:
    """One line per series (None: no point), a legend, y labels in yuan."""
    left, right, top, bottom = 56, 110, 22, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([v for vs in series.values() for v in vs if v is not None] + [1])
    n = max(1, len(x_labels) - 1)

    def x(i: int) -> float:
        return left + plot_w * i / n

    def y(v: int) -> float:
        return top + plot_h - plot_h * max(v, 0) / peak

    def lab(v: int) -> str:
        return f"¥{v // 100}" if fmt_yuan else str(v)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
             f'role="img" aria-label="{escape(title)}" class="chart" id="ltv-chart">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#ccc"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#ccc"/>']
    for frac in (0.0, 0.5, 1.0):
        v = int(peak * frac)
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end" fill="#666">'
                     f"{escape(lab(v))}</text>")
    for i, name in enumerate(x_labels):
        parts.append(f'<text x="{x(i):.1f}" y="{height - 10}" font-size="10" text-anchor="middle" fill="#333">'
                     f"{escape(name)}</text>")
    for k, (name, values) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        pts = [(x(i), y(v), v) for i, v in enumerate(values) if v is not None]
        if len(pts) > 1:
            d = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in pts)
            parts.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for px, py, v in pts:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}">'
                         f"<title>{escape(name)}: {escape(lab(v))}</title></circle>")
        ly = top + 14 * k + 6
        parts.append(f'<rect x="{left + plot_w + 12}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{left + plot_w + 26}" y="{ly + 1}" font-size="11" fill="#333">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
