"""Data colour scales: value in [0, 1] -> RGB. Pure functions, no Textual.

These are computed colours (a value per token), so they live here rather than in the .tcss,
which uses theme variables for everything that is chrome.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.color import Color
from rich.style import Style

RGB = tuple[int, int, int]

NEUTRAL: RGB = (96, 96, 96)  # "no prediction" / missing value


def _lerp(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


@dataclass(frozen=True)
class Scale:
    name: str
    low: RGB
    high: RGB
    low_label: str = "0"
    high_label: str = "1"

    def rgb(self, value: float | None) -> RGB:
        if value is None or not math.isfinite(value):
            return NEUTRAL
        return _lerp(self.low, self.high, min(1.0, max(0.0, float(value))))

    def style(self, value: float | None, *, shade: float = 0.0) -> Style:
        """Background from the scale with readable text; `shade` darkens (0..1) so that
        neighbouring tokens of equal value still show a boundary."""
        r, g, b = self.rgb(value)
        if shade:
            r, g, b = (round(c * (1 - shade)) for c in (r, g, b))
        return Style(bgcolor=Color.from_rgb(r, g, b), color=Color.from_rgb(*text_on((r, g, b))))

    def swatch(self, value: float | None) -> Style:
        """Foreground-only style (for block glyphs in bars and strips)."""
        return Style(color=Color.from_rgb(*self.rgb(value)))


def text_on(bg: RGB) -> RGB:
    """Black or white, whichever reads better on `bg` (relative luminance)."""
    r, g, b = (c / 255 for c in bg)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return (0, 0, 0) if luminance > 0.5 else (255, 255, 255)


@dataclass(frozen=True)
class DivergingScale(Scale):
    """Signed values mapped to [0, 1] (0.5 = zero): low -> mid -> high, so the sign reads
    as hue and the size as depth."""

    mid: RGB = (240, 240, 240)

    def rgb(self, value: float | None) -> RGB:
        if value is None or not math.isfinite(value):
            return NEUTRAL
        v = min(1.0, max(0.0, float(value)))
        return _lerp(self.low, self.mid, v * 2) if v < 0.5 else _lerp(self.mid, self.high, v * 2 - 1)


PROBABILITY = Scale("probability", (214, 39, 40), (31, 119, 220), "0", "1")
ENTROPY = Scale("entropy", (255, 236, 210), (166, 54, 3), "0 certain", "1 uniform")
INFLUENCE = Scale("influence", (26, 152, 80), (128, 60, 190), "low", "high")
LAYER = Scale("layer", (214, 39, 40), (31, 119, 220), "0.0", "1.0")
# KL(p_A || p_B) per position, scaled by the prompt's largest (model comparison).
KL = Scale("KL(A‖B)", (240, 240, 240), (190, 30, 120), "0", "max")
# Attribution: saliency is a size (one hue); the signed methods diverge around zero.
ATTRIBUTION = Scale("attribution", (250, 245, 225), (200, 80, 0), "0", "max")
ATTRIBUTION_SIGNED = DivergingScale("attribution", (33, 102, 172), (178, 24, 43), "-max", "+max")
