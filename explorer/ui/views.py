"""What the user chose to look at: the colour layer (e) and the layer view (p)."""

from __future__ import annotations

from enum import Enum

from explorer.ui import colors


class ColourLayer(Enum):
    NONE = "none"
    PROBABILITY = "probability"
    ENTROPY = "entropy"
    INFLUENCE = "influence"
    ATTRIBUTION = "attribution"

    def next(self) -> ColourLayer:
        """`e`: none -> probability -> entropy -> influence -> none. Attribution is not in
        the cycle (`i` reaches it), so a stray `e` never starts a gradient job; from
        attribution, `e` goes back to none."""
        members = [m for m in ColourLayer if m is not ColourLayer.ATTRIBUTION]
        if self not in members:
            return ColourLayer.NONE
        return members[(members.index(self) + 1) % len(members)]

    @property
    def scale(self) -> colors.Scale | None:
        return {
            ColourLayer.PROBABILITY: colors.PROBABILITY,
            ColourLayer.ENTROPY: colors.ENTROPY,
            ColourLayer.INFLUENCE: colors.INFLUENCE,
        }.get(self)


def attribution_colours(values, signed: bool) -> list[float]:
    """Raw scores -> [0, 1] for the scale: divided by the largest |score| of the prompt, so
    the strongest position is full colour; signed scores map 0 to the middle (0.5)."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    peak = float(np.max(np.abs(v))) if v.size else 0.0
    scaled = v / peak if peak > 0 else np.zeros_like(v)
    return [float(x) for x in ((scaled + 1) / 2 if signed else scaled)]


class LayerView(Enum):
    NONE = "none"
    PROBABILITIES = "layer probabilities"
    CORRELATIONS = "layer correlations"

    def next(self) -> LayerView:
        order = [LayerView.PROBABILITIES, LayerView.CORRELATIONS, LayerView.NONE]
        return order[(order.index(self) + 1) % len(order)]


def layer_values(probs, view: LayerView):
    """[L+1, n] lens probabilities -> what the layer view shows. Correlations scale each
    column (one token's curve over the layers) by its own maximum, so shape not size shows."""
    import numpy as np

    probs = np.asarray(probs, dtype=np.float32)
    if view is not LayerView.CORRELATIONS:
        return probs
    with np.errstate(invalid="ignore", divide="ignore"):
        peak = np.nanmax(np.where(np.isnan(probs), -np.inf, probs), axis=0, keepdims=True)
        out = np.where(peak > 0, probs / peak, 0.0)
    return np.where(np.isnan(probs), np.nan, out).astype(np.float32)
