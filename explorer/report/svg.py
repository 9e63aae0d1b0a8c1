"""Line plots as inline SVG (no script, no library): values along the prompt's positions,
one polyline per curve, gaps where a value is missing (the first token has no prediction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from explorer.display.plot import PALETTE

WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 720, 200, 48, 12, 14, 28


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """The stretches of consecutive known values (a polyline each)."""
    runs, run = [], []
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            if run:
                runs.append(run)
            run = []
        else:
            run.append((i, float(v)))
    if run:
        runs.append(run)
    return runs


def line_plot(curves: Sequence[tuple[str, Sequence[float | None]]], *, title: str, y_label: str,
              y_max: float | None = None, plot_id: str = "") -> str:
    """An <svg> with one curve per (name, values); x is the position (0-based), y from 0 to
    `y_max` (default: the largest value). Every point has a <title> (hover shows it)."""
    n = max((len(v) for _, v in curves), default=0)
    known = [v for _, vals in curves for v in vals if v is not None and math.isfinite(v)]
    top = y_max if y_max is not None else max(known, default=1.0) or 1.0
    inner_w, inner_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def x(i: int) -> float:
        return PAD_L + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)

    def y(v: float) -> float:
        return PAD_T + inner_h * (1 - min(max(v / top, 0.0), 1.0))

    out = [f'<svg class="plot" id="{escape(plot_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
           f"<title>{escape(title)}</title>",
           f'<rect x="{PAD_L}" y="{PAD_T}" width="{inner_w}" height="{inner_h}" class="frame"/>']
    for frac in (0.0, 0.5, 1.0):  # the y axis: 0, half, top
        yy = PAD_T + inner_h * (1 - frac)
        out.append(f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>')
        out.append(f'<text x="{PAD_L - 4}" y="{yy + 4:.1f}" text-anchor="end" class="tick">{top * frac:.3g}</text>')
    for i in sorted({0, n - 1, *range(0, n, max(1, round(n / 8)))} if n else ()):  # x ticks
        out.append(f'<text x="{x(i):.1f}" y="{HEIGHT - 10}" text-anchor="middle" class="tick">{i}</text>')
    out.append(f'<text x="12" y="{PAD_T + inner_h / 2:.1f}" transform="rotate(-90 12 {PAD_T + inner_h / 2:.1f})" '
               f'text-anchor="middle" class="axis">{escape(y_label)}</text>')
    for k, (name, values) in enumerate(curves):
        colour = PALETTE[k % len(PALETTE)]
        out.append(f'<g class="curve" data-name="{escape(name)}" stroke="{colour}" fill="{colour}">')
        for run in _runs(values):
            if len(run) > 1:
                points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
                out.append(f'<polyline points="{points}" fill="none" stroke-width="1.5"/>')
            for i, v in run:
                out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.2">'
                           f"<title>{escape(name)} at {i}: {v:.4g}</title></circle>")
        out.append("</g>")
    out.append("</svg>")
    legend = "".join(f'<span class="key"><i style="background:{PALETTE[k % len(PALETTE)]}"></i>'
                     f"{escape(name)}</span>" for k, (name, _) in enumerate(curves))
    return f'<figure><figcaption>{escape(title)} {legend}</figcaption>{"".join(out)}</figure>'
