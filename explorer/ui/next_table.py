"""The table of the most probable next tokens."""

from __future__ import annotations

import math
from typing import Collection, Sequence

import numpy as np
from rich.style import Style
from rich.text import Text
from textual.binding import Binding

from explorer.backend.types import Candidate
from explorer.ui.colors import LAYER
from explorer.ui.line_table import LineTable

BAR_WIDTH = 12
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def prob_bar(prob: float, width: int = BAR_WIDTH) -> str:
    """A bar of `width` cells with eighth-cell resolution."""
    eighths = round(max(0.0, min(1.0, prob)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[part] if part else "")).ljust(width)


def layer_strip(values: Sequence[float], cell: int) -> Text:
    """Cells painted by background colour: a cell's own background wins over the cursor
    row's (a foreground-coloured █ lost its colour when highlighted)."""
    strip = Text(no_wrap=True)
    for v in values:
        v = float(v)
        strip.append(" " * cell, style=Style(bgcolor=LAYER.style(None if math.isnan(v) else v).bgcolor))
    return strip


class NextTokenTable(LineTable, inherit_bindings=False):
    """Rows are candidates, best first. Owns only cursor movement: left/right belong to the
    prompt (pop/append), so ScrollView's bindings are not inherited (at narrow widths their
    left/right would scroll the table sideways instead)."""

    BINDINGS = [
        Binding("up,k", "cursor_up", "Move", id="table.up", key_display="↑↓/jk"),
        Binding("down,j", "cursor_down", "Down", id="table.down", show=False),
        *LineTable.BINDINGS[2:],  # page up/down, home/end: the base table's
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._candidates: tuple[Candidate, ...] = ()
        self._shown_key: tuple | None = None
        self._layers = 0

    def on_mount(self) -> None:
        self.set_rows(self._labels_for(with_strip=False), [])

    def _labels_for(self, with_strip: bool, with_final: bool = False) -> list[str]:
        labels = ["#", "token", "id", "p_base", "log p"]
        if with_final:
            labels.insert(4, "p_final")
        if with_strip:
            labels.append(f"layers 0..{self._layers - 1}" if self._layers else "layers")
        return labels

    def check_action(self, action: str, parameters) -> bool | None:
        # Nothing to move through until the first table arrives (keeps the footer honest).
        return bool(self._candidates) or not action.startswith("cursor_")

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return self._candidates

    def selected(self) -> Candidate | None:
        if not self._candidates:
            return None
        return self._candidates[min(self.cursor_row, len(self._candidates) - 1)]

    def show(
        self,
        candidates: Sequence[Candidate],
        strips: np.ndarray | None = None,
        with_strip: bool = False,
        special_ids: Collection[int] = (),
        p_final: Sequence[float] | None = None,
        valid: Sequence[bool] | None = None,
    ) -> None:
        """Replace the rows, keeping the cursor on the same row number (holding right on
        row 3 keeps taking the third candidate). strips: [L+1, k] values or None (pending);
        p_final: the sampler's probability per row (0 = excluded: the row stays, greyed),
        None for no p_final column; valid: per row, False where the constraint forbids the
        token (struck through, "✗ forbidden" in the error colour: apart from the greyed
        top-k/top-p exclusions), None without a constraint.
        Showing what is already shown (a colour-layer toggle redraws the view) costs nothing."""
        candidates = tuple(candidates)
        bar_colour = self.app.current_theme.primary
        final_colour = self.app.current_theme.accent or self.app.current_theme.secondary
        p_final = None if p_final is None else tuple(p_final)
        valid = None if valid is None else tuple(valid)
        forbid_colour = self.app.current_theme.error or "red"
        key = (candidates, with_strip, bar_colour, p_final, valid,
               None if strips is None else (strips.shape, strips.tobytes()),
               frozenset(c.token_id for c in candidates if c.token_id in special_ids))
        if key == self._shown_key:
            return
        self._shown_key = key
        if strips is not None:
            self._layers = strips.shape[0]
        was_empty = not self._candidates
        self._candidates = candidates
        if was_empty:
            self.refresh_bindings()
        bar_style = Style(color=bar_colour)
        final_style = Style(color=final_colour)
        cell = 1
        if strips is not None and strips.shape[0] <= 13:
            cell = 2
        rows = []
        for i, c in enumerate(self._candidates):
            excluded = p_final is not None and p_final[i] <= 0
            forbidden = valid is not None and not valid[i]
            grey = ("dim strike" if forbidden else "dim") if excluded else ""
            row_cells = [
                Text(str(i + 1), justify="right", style="dim"),
                # Special tokens in bold italic, as in the prompt panel.
                Text(c.text, no_wrap=True, style=("bold italic " if c.token_id in special_ids else "") + grey),
                Text(str(c.token_id), justify="right", style="dim"),
                Text.assemble((prob_bar(c.prob), "dim" if excluded else bar_style), f" {c.prob:7.2%}",
                              style=grey),
                Text(f"{c.logprob:8.3f}", justify="right", style=grey),
            ]
            if p_final is not None:
                final_cell = (Text("excluded".center(BAR_WIDTH + 8), style="dim italic") if excluded else
                              Text.assemble((prob_bar(p_final[i]), final_style), f" {p_final[i]:7.2%}"))
                if forbidden:
                    final_cell = Text("✗ forbidden".center(BAR_WIDTH + 8), style=Style(color=forbid_colour))
                row_cells.insert(4, final_cell)
            if with_strip:
                if strips is None:
                    row_cells.append(Text("…", style="dim"))
                else:
                    row_cells.append(layer_strip(strips[:, i], cell))
            rows.append(row_cells)
        self.set_rows(self._labels_for(with_strip, p_final is not None), rows)
