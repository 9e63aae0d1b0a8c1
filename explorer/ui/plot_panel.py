"""The plot panel: surprisal and entropy along the shown prompt, and the tracked tokens'
probability (p_base) along it, drawn in braille (explorer.display.plot) with an axis and a
legend per chart. The curves are the HTML report's (explorer.report.data.prompt_curves,
tracked_rows), so the panel and a written report show the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from explorer.display.plot import BLANK, PALETTE, canvas
from explorer.report.data import prompt_curves, tracked_rows

Curve = tuple[str, Sequence[float | None]]
ROWS = 5  # braille rows per chart: 20 dots high (2 on a short terminal, no x axis line)
LABEL_W = 8  # "1.2e-05 │"


def curves(records, series, token_text) -> tuple[list[Curve], list[Curve]]:
    """(surprisal and entropy, one p_base curve per tracked token) for `show`, from the
    lane's records and its tracked view (None: no pins, or not fetched yet)."""
    along = prompt_curves(records)
    prompt = [("surprisal −ln p", along["surprisal"]), ("entropy", along["entropy"])]
    return prompt, [(row["text"], row["probs"][: len(records)]) for row in tracked_rows(series, token_text)]


class PlotPanel(Widget):
    """`show(records_curves, tracked_curves)`; nothing is computed here but the drawing."""

    DEFAULT_CSS = """
    PlotPanel { height: auto; border: round $primary-darken-1; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.charts: list[tuple[str, list[Curve], float | None]] = []
        self.note = "Waiting for the prompt's numbers…"

    def on_mount(self) -> None:
        self.border_title = "plot · along the prompt"
        self.border_subtitle = "P closes"

    def show(self, prompt: Sequence[Curve], tracked: Sequence[Curve]) -> None:
        """prompt: surprisal and entropy (nats); tracked: one p_base curve per pinned token
        (empty: a hint instead)."""
        self.charts = [("nats", list(prompt), None)]
        if tracked:
            self.charts.append(("p_base", list(tracked), None))  # scaled to the largest: pins are often rare
        self.note = "" if tracked else "m pins a token to plot its probability along the prompt."
        self.refresh(layout=True)

    def render(self) -> Text:
        width = max(8, self.size.width - LABEL_W - 1) if self.size.width else 60
        short = self.app.size.height < 40  # the table keeps its rows on a short terminal
        rows = 2 if short else ROWS
        out = Text()
        for n, (unit, curves, y_max) in enumerate(self.charts):
            if n:
                out.append("\n")
            out.append_text(_chart(unit, curves, y_max, width, rows, axis=not short))
        if self.note:
            out.append(("\n" if self.charts else "") + self.note, style="italic")
        return out


def _chart(unit: str, curves: Sequence[Curve], y_max: float | None, width: int, rows: int,
           axis: bool = True) -> Text:
    values = [list(v) for _, v in curves]
    known = [x for v in values for x in v if x is not None]
    top = y_max if y_max is not None else (max(known) if known else 1.0)
    grid = canvas(values, width, rows, top)
    text = Text()
    for k, (name, _) in enumerate(curves):  # the legend line
        text.append("● ", style=Style(color=PALETTE[k % len(PALETTE)]))
        text.append(f"{name}   ")
    text.append(f"({unit})\n", style="dim")
    for r, row in enumerate(grid):
        label = f"{top:.3g}" if r == 0 else ("0" if r == rows - 1 else "")
        text.append(f"{label:>{LABEL_W - 1}} │", style="dim")
        for char, owner in row:
            style = None if owner is None else Style(color=PALETTE[owner % len(PALETTE)])
            text.append(char if owner is not None else BLANK, style=style)
        if r < rows - 1 or axis:
            text.append("\n")
    if not axis:
        return text
    n = max((len(v) for v in values), default=0)
    last = f"{n - 1}" if n > 1 else ""
    text.append(" " * (LABEL_W + 1) + "0" + " " * max(1, width - 1 - len(last)) + last, style="dim")
    return text
