"""Server-drawn SVG charts (no JavaScript, no library): a bar chart with axis labels."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape


def bar_chart(labels: Sequence[str], values: Sequence[int], *, title: str, fmt: str = "{}",
              width: int = 560, height: int = 180, colour: str = "#2f7d5b") -> str:
    """`fmt` formats a value for its label (a Python format string, or "yuan")."""
    left, right, top, bottom = 8, 8, 22, 30
    n = max(1, len(values))
    peak = max([*values, 1])
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / n
    bar_w = max(2.0, slot * 0.62)

    def label(v: int) -> str:
        if fmt == "yuan":
            return f"¥{v // 100}"
        return fmt.format(v)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f'<title>{escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#ccc"/>',
    ]
    for i, (name, v) in enumerate(zip(labels, values)):
        h = 0 if v <= 0 else max(1.0, plot_h * v / peak)
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}" rx="2">'
                     f'<title>{escape(name)}: {escape(label(v))}</title></rect>')
        if v > 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" font-size="10" text-anchor="middle" '
                         f'fill="#333">{escape(label(v))}</text>')
        if n <= 16 or i % 2 == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 12}" font-size="10" text-anchor="middle" '
                         f'fill="#666">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
