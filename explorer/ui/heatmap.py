"""Layers x tokens heatmap of logit-lens values for the prompt's last tokens."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rich.text import Text
from textual.widget import Widget

from explorer.ui.colors import LAYER

CELL = 4  # characters per token column: three for the label, one gap


class LayerHeatmap(Widget):
    """Rows are layers 0..L (L = the model's own output), columns the last prompt tokens that
    fit the width. Values are already in [0, 1] (probabilities or correlations); NaN (the
    first token: no prediction) is drawn neutral."""

    DEFAULT_CSS = "LayerHeatmap { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._values: np.ndarray | None = None
        self._texts: list[str] = []

    def show(self, values: np.ndarray | None, texts: Sequence[str]) -> None:
        self._values, self._texts = values, list(texts)
        layers = 0 if values is None else values.shape[0]
        self.tooltip = (
            f"Logit lens: rows are layers 0..{layers - 1} (L{layers - 1} is the model's output), "
            "columns the prompt's last tokens; colour red 0.0 -> blue 1.0."
            if layers
            else None
        )
        self.refresh(layout=True)

    def render(self) -> Text:
        if self._values is None:
            return Text("computing layer view…", style="italic")
        layers, n = self._values.shape
        label_w = len(f"L{layers - 1}") + 1
        fit = max(1, (self.size.width - label_w) // CELL)
        start = max(0, n - fit)
        out = Text(no_wrap=True, overflow="crop")
        out.append(" " * label_w)
        for t in self._texts[start:n]:
            out.append(t[: CELL - 1].ljust(CELL), style="dim")
        for layer in range(layers):
            out.append("\n")
            out.append(f"L{layer}".ljust(label_w), style="dim")
            for col in range(start, n):
                value = float(self._values[layer, col])
                out.append(" " * (CELL - 1), style=LAYER.style(None if np.isnan(value) else value))
                out.append(" ")
        return out
