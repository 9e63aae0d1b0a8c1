"""Line plots in text: curves drawn with braille dots (2 × 4 dots per character cell), so a
60-column panel shows 120 points across. Pure data in, characters out (no Textual): the
app's plot panel colours each cell by the curve that drew it.

x is the position along the prompt (0 .. n-1 spread over the width); y runs from 0 at the
bottom to `y_max` at the top. A missing value (None: the first token has no prediction)
leaves a gap; neighbouring known values are joined by a line of dots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# Curve colours, the same in the app and the HTML report: told apart by people with the
# common colour-vision deficiencies (Okabe-Ito), readable on dark and light.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442")
# Braille dot bits by (column, row) inside a cell: dots 1-2-3-7 left, 4-5-6-8 right.
_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
BLANK = chr(0x2800)


def _known(v) -> bool:
    return v is not None and math.isfinite(v)


def canvas(curves: Sequence[Sequence[float | None]], width: int, height: int,
           y_max: float | None = None) -> list[list[tuple[str, int | None]]]:
    """`height` rows of `width` cells: (braille character, index of the last curve that
    put a dot in the cell, or None for an empty cell)."""
    width, height = max(1, width), max(1, height)
    n = max((len(c) for c in curves), default=0)
    top = y_max if y_max is not None else max((v for c in curves for v in c if _known(v)), default=1.0)
    top = top if top and top > 0 else 1.0
    dots_w, dots_h = width * 2, height * 4
    bits = [[0] * width for _ in range(height)]
    owner: list[list[int | None]] = [[None] * width for _ in range(height)]

    def point(i: int, v: float) -> tuple[int, int]:
        x = round(i * (dots_w - 1) / (n - 1)) if n > 1 else dots_w // 2
        y = dots_h - 1 - round(min(max(v / top, 0.0), 1.0) * (dots_h - 1))
        return x, y

    def dot(x: int, y: int, k: int) -> None:
        row, col = y // 4, x // 2
        bits[row][col] |= _BITS[x % 2][y % 4]
        owner[row][col] = k

    for k, values in enumerate(curves):
        last = None
        for i, v in enumerate(values):
            if not _known(v):
                last = None
                continue
            here = point(i, float(v))
            if last is None:
                dot(*here, k)
            else:  # a straight run of dots from the last point (enough steps for no gaps)
                (x0, y0), (x1, y1) = last, here
                steps = max(abs(x1 - x0), abs(y1 - y0), 1)
                for s in range(steps + 1):
                    dot(round(x0 + (x1 - x0) * s / steps), round(y0 + (y1 - y0) * s / steps), k)
            last = here
    return [[(chr(0x2800 + b), o) for b, o in zip(brow, orow)] for brow, orow in zip(bits, owner)]
