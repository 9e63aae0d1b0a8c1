"""The tracked-tokens panel: per pinned token its p_base, p_final and rank at the next
position, a sparkline of its p_base after every position of the prompt, and with the
logit lens its probability at each layer. Draws only the plain data it is handed; its ✕
asks the app to unpin a token (TrackedPanel.Unpin), which also works for pins the table
does not list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Label, Sparkline, Static

from explorer.backend.sampling import ServerDraw
from explorer.backend.types import TrackedSeries
from explorer.ui.next_table import layer_strip


@dataclass(frozen=True)
class TrackedRow:
    token_id: int
    text: str
    p_base: float
    p_final: float | None  # None: no sampler on this backend
    rank: int
    series: np.ndarray  # p_base after every position
    layers: np.ndarray | None  # lens p per layer after the last position, or None
    rank_bound: bool = False  # rank is a lower bound (a server's top-K did not list it)


def tracked_rows(series: TrackedSeries, token_text, p_final=None) -> list[TrackedRow]:
    """One row per tracked token at the next position (the series' last row); p_final:
    the local sampler's distribution over the vocabulary, a server's draw, or None."""
    bound = series.rank_bound
    return [TrackedRow(token_id=t, text=token_text(t), p_base=float(series.probs[-1, j]),
                       p_final=_final_of(p_final, t),
                       rank=int(series.ranks[-1, j]), series=series.probs[:, j],
                       layers=None if series.layer_probs is None else series.layer_probs[:, j],
                       rank_bound=bool(bound is not None and bound[-1, j]))
            for j, t in enumerate(series.token_ids)]


def percent(p: float) -> str:
    """A probability as a percentage that stays readable when tiny (0.0031% not 0.00%)."""
    if p >= 0.0001 or p == 0:
        return f"{p:.2%}"
    return f"{p * 100:.2g}%"


def _summary(row: TrackedRow, special: bool) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"{row.text!s:<12.12}", "bold italic" if special else "bold")
    out.append(f" {row.token_id:>6} ", "dim")
    out.append(f"p {percent(row.p_base):>7} ")
    if row.p_final is None:
        pass
    elif row.p_final > 0:
        out.append(f"final {percent(row.p_final):>7} ")
    else:
        out.append("final excluded ", "dim")
    # A bound rank r says r - 1 listed tokens are more likely: "below the top r - 1".
    out.append(f"#>{row.rank - 1}" if row.rank_bound else f"#{row.rank}", "dim")
    return out


def _final_of(p_final, token: int) -> float | None:
    if isinstance(p_final, ServerDraw):
        if p_final.p_final is None:  # the server does not report p_final
            return None
        got = p_final.p_final.get(token)
        # Exact p_final lists every token it keeps; a bound does not say (None).
        return got if got is not None or p_final.entropy_final_bound else 0.0
    return None if p_final is None else float(p_final[token])


class TrackedLine(Horizontal):
    DEFAULT_CSS = """
    TrackedLine { height: 1; }
    TrackedLine > .unpin { width: 2; color: $text-muted; }
    TrackedLine > .unpin:hover { color: $error; text-style: bold; }
    TrackedLine > .summary { width: 52; }
    TrackedLine > Sparkline { width: 1fr; height: 1; margin: 0 1; }
    TrackedLine > .layers { width: auto; max-width: 40; }
    """

    def __init__(self, row: TrackedRow, special: bool) -> None:
        super().__init__()
        self._row, self._special = row, special

    @property
    def token_id(self) -> int:
        return self._row.token_id

    def compose(self) -> ComposeResult:
        yield UnpinMark("✕", classes="unpin")
        yield Static(_summary(self._row, self._special), classes="summary")
        yield Sparkline([float(v) for v in self._row.series], summary_function=max)
        layers = Static(classes="layers")
        layers.display = self._row.layers is not None
        if self._row.layers is not None:
            layers.update(layer_strip(self._row.layers, 1))
        yield layers

    def update_row(self, row: TrackedRow, special: bool) -> None:
        self._row, self._special = row, special
        self.query_one(".summary", Static).update(_summary(row, special))
        self.query_one(Sparkline).data = [float(v) for v in row.series]
        strip = self.query_one(".layers", Static)
        strip.display = row.layers is not None
        if row.layers is not None:
            strip.update(layer_strip(row.layers, 1))


class UnpinMark(Static):
    """The ✕ before a tracked row: a click unpins that row's token."""

    def on_click(self, event: events.Click) -> None:
        event.stop()
        line = self.parent
        if isinstance(line, TrackedLine):
            self.post_message(TrackedPanel.Unpin(line.token_id))


class TrackedPanel(Vertical):
    class Unpin(Message):
        """The user asked to stop tracking `token_id` (its ✕ was clicked)."""

        def __init__(self, token_id: int) -> None:
            super().__init__()
            self.token_id = token_id

    DEFAULT_CSS = """
    TrackedPanel { height: auto; max-height: 10; border: round $primary-darken-1; padding: 0 1; }
    TrackedPanel > #tracked-waiting { color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Label("", id="tracked-waiting")

    def on_mount(self) -> None:
        self.border_title = "tracked tokens"
        self.border_subtitle = "m pins/unpins the selected token · M pins/unpins text · ✕ unpins"

    @property
    def lines(self) -> list[TrackedLine]:
        return list(self.query(TrackedLine))

    def waiting(self, note: str) -> None:
        self.query_one("#tracked-waiting", Label).update(note)
        self.query_one("#tracked-waiting").display = True

    def show(self, rows: Sequence[TrackedRow], special_ids=frozenset(), lens: bool = False) -> None:
        self.query_one("#tracked-waiting").display = False
        lines = self.lines
        if [line.token_id for line in lines] != [r.token_id for r in rows]:
            for line in lines:
                line.remove()
            self.mount_all([TrackedLine(r, r.token_id in special_ids) for r in rows])
        else:
            for line, row in zip(lines, rows):
                line.update_row(row, row.token_id in special_ids)
        what = "p_base · p_final · rank at the next position │ p_base after every position"
        self.border_title = f"tracked tokens · {what}" + (" │ lens per layer" if lens else "")
