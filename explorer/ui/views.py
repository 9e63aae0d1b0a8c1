"""What the user chose to look at: the colour layer (e) and the layer view (p)."""

from __future__ import annotations

from enum import Enum

from explorer.ui import colors


class ColourLayer(Enum):
    NONE = "none"
    PROBABILITY = "probability"
    ENTROPY = "entropy"
    INFLUENCE = "influence"

    def next(self) -> ColourLayer:
        members = list(ColourLayer)
        return members[(members.index(self) + 1) % len(members)]

    @property
    def scale(self) -> colors.Scale | None:
        return {
            ColourLayer.PROBABILITY: colors.PROBABILITY,
            ColourLayer.ENTROPY: colors.ENTROPY,
            ColourLayer.INFLUENCE: colors.INFLUENCE,
        }.get(self)


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
