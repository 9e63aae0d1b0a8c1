"""Layers x tokens heatmap of logit-lens values for the prompt's last tokens."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rich.cells import set_cell_size
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
        self._waiting = ""

    def show(self, values: np.ndarray | None, texts: Sequence[str], waiting: str = "computing layer view…") -> None:
        """texts: one column label per token; waiting: what to say while values is None."""
        self._values, self._texts, self._waiting = values, list(texts), waiting
        layers = 0 if values is None else values.shape[0]
        self.tooltip = (
            f"Logit lens: rows are layers 0..{layers - 1} (L{layers - 1} is the model's output), "
            "columns the prompt's last tokens (◀N: N earlier tokens do not fit); "
            "colour red 0.0 -> blue 1.0."
            if layers
            else None
        )
        self.refresh(layout=True)

    @property
    def hidden(self) -> int:
        """How many earlier tokens are cut off on the left at the current width."""
        if self._values is None:
            return 0
        layers, n = self._values.shape
        return max(0, n - self._fit(layers, n))

    def _label_width(self, layers: int, hidden: int) -> int:
        mark = len(f"◀{hidden}") if hidden else 0
        return max(len(f"L{layers - 1}"), mark) + 1

    def _fit(self, layers: int, n: int) -> int:
        fit = max(1, (self.size.width - self._label_width(layers, 0)) // CELL)
        if fit < n:  # the mark for hidden tokens may need a wider label column
            fit = max(1, (self.size.width - self._label_width(layers, n - fit)) // CELL)
        return fit

    def render(self) -> Text:
        if self._values is None:
            return Text(self._waiting, style="italic")
        layers, n = self._values.shape
        start = max(0, n - self._fit(layers, n))
        label_w = self._label_width(layers, start)
        out = Text(no_wrap=True, overflow="crop")
        # "◀12": twelve earlier tokens do not fit on the left.
        out.append(f"◀{start}".ljust(label_w) if start else " " * label_w, style="bold" if start else "")
        for t in self._texts[start:n]:
            # Cell widths, not characters: a wide character (東, 🙂) fills two cells.
            out.append(set_cell_size(t, CELL - 1) + " ", style="dim")
        for layer in range(layers):
            out.append("\n")
            out.append(f"L{layer}".ljust(label_w), style="dim")
            for col in range(start, n):
                value = float(self._values[layer, col])
                out.append(" " * (CELL - 1), style=LAYER.style(None if np.isnan(value) else value))
                out.append(" ")
        return out
