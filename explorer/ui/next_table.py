"""The table of the most probable next tokens."""

from __future__ import annotations

import math
from typing import Collection, Sequence

import numpy as np
from rich.cells import cell_len
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
        self._data = None  # what show() was last handed, laid out again on a resize
        self._fitted_width = 0

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
        marked: int | None = None,
    ) -> None:
        """Replace the rows, keeping the cursor on the same row number (holding right on
        row 3 keeps taking the third candidate). strips: [L+1, k] values or None (pending);
        p_final: the sampler's probability per row (0 = excluded: the row stays, greyed),
        None for no p_final column; valid: per row, False where the constraint forbids the
        token (struck through, "✗ forbidden" in the error colour: apart from the greyed
        top-k/top-p exclusions), None without a constraint; marked: the row of the token
        that actually followed (at an earlier position), drawn "▸" and bold.
        Showing what is already shown (a colour-layer toggle redraws the view) costs nothing."""
        candidates = tuple(candidates)
        bar_colour = self.app.current_theme.primary
        p_final = None if p_final is None else tuple(p_final)
        valid = None if valid is None else tuple(valid)
        key = (candidates, with_strip, bar_colour, p_final, valid, marked,
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
        self._data = (strips, with_strip, special_ids, p_final, valid, marked)
        self._fit()

    @property
    def columns(self) -> tuple[str, ...]:
        """The labels of the columns on screen (narrow terminals drop some whole)."""
        return tuple(label.plain for label in self._labels)

    def on_resize(self, event) -> None:
        if self._data is not None and self._available_width() != self._fitted_width:
            self._fit()
        super().on_resize(event)

    def _available_width(self) -> int:
        """Cells for the columns: the content width less the vertical scrollbar when the
        rows will not fit (0 before the first layout)."""
        region = self.content_region
        rows = len(self._candidates) + 1
        return region.width - (self.styles.scrollbar_size_vertical if rows > region.height else 0)

    def _fit(self) -> None:
        """The richest layout whose columns fit the width: the bars shrink, then whole
        columns go (id, log p, layers, #), and last the token text is shortened with an
        ellipsis, so that no number is ever cut at the edge."""
        available = self._fitted_width = self._available_width()
        for bar, dropped in FITS:
            labels, rows = self._build(bar, dropped)
            if available <= 0 or _table_width(labels, rows) <= available:
                break
        else:
            token = labels.index("token")
            token_width = available - (_table_width(labels, rows) - _column_width(labels, rows, token))
            labels, rows = self._build(bar, dropped, max(1, token_width - 2))
        self.set_rows(labels, rows)

    def _build(self, bar: int, dropped: frozenset[str], token_width: int | None = None):
        strips, with_strip, special_ids, p_final, valid, marked = self._data
        final_colour = self.app.current_theme.accent or self.app.current_theme.secondary
        forbid_colour = self.app.current_theme.error or "red"
        bar_style = Style(color=self.app.current_theme.primary)
        final_style = Style(color=final_colour)
        cell = 1
        if strips is not None and strips.shape[0] <= 13:
            cell = 2
        labels = self._labels_for(with_strip, p_final is not None)
        keep = [label not in dropped and not (label.startswith("layers") and "layers" in dropped)
                for label in labels]
        rows = []
        for i, c in enumerate(self._candidates):
            excluded = p_final is not None and p_final[i] <= 0
            forbidden = valid is not None and not valid[i]
            grey = ("dim strike" if forbidden else "dim") if excluded else ""
            token = Text(c.text, no_wrap=True, style=("bold italic " if c.token_id in special_ids else "") + grey)
            if token_width is not None and token.cell_len > token_width:
                token.truncate(token_width, overflow="ellipsis")
            if i == marked:  # the token that followed here: "▸" in the # column, bold text
                token.stylize("bold")
            row_cells = [
                Text(f"▸{i + 1}" if i == marked else str(i + 1), justify="right",
                     style="bold" if i == marked else "dim"),
                # Special tokens in bold italic, as in the prompt panel.
                token,
                Text(str(c.token_id), justify="right", style="dim"),
                Text.assemble((prob_bar(c.prob, bar), "dim" if excluded else bar_style),
                              f"{' ' if bar else ''}{c.prob:7.2%}", style=grey),
                Text(f"{c.logprob:8.3f}", justify="right", style=grey),
            ]
            if p_final is not None:
                final_cell = (Text("excluded".center(bar + 8), style="dim italic") if excluded else
                              Text.assemble((prob_bar(p_final[i], bar), final_style),
                                            f"{' ' if bar else ''}{p_final[i]:7.2%}"))
                if forbidden:
                    final_cell = Text("✗ forbidden".center(bar + 8), style=Style(color=forbid_colour))
                row_cells.insert(4, final_cell)
            if with_strip:
                if strips is None:
                    row_cells.append(Text("…", style="dim"))
                else:
                    row_cells.append(layer_strip(strips[:, i], cell))
            rows.append([cell_ for cell_, k in zip(row_cells, keep) if k])
        return [label for label, k in zip(labels, keep) if k], rows


# Layouts from the widest down: (bar cells, columns left out); see NextTokenTable._fit.
FITS = [
    (BAR_WIDTH, frozenset()),
    (BAR_WIDTH // 2, frozenset()),
    (0, frozenset()),
    (0, frozenset({"id"})),
    (0, frozenset({"id", "log p"})),
    (0, frozenset({"id", "log p", "layers"})),
    (0, frozenset({"id", "log p", "layers", "#"})),
]


def _column_width(labels, rows, j: int) -> int:
    return max([cell_len(labels[j])] + [row[j].cell_len for row in rows]) + 2


def _table_width(labels, rows) -> int:
    """Cells the table needs (each column as wide as its widest cell, plus its padding)."""
    return sum(_column_width(labels, rows, j) for j in range(len(labels)))
