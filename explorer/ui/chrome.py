"""The small widgets around the data: header line, legend, loading panel, busy bar."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, LoadingIndicator, ProgressBar, Static

from explorer.ui.colors import LAYER, Scale
from explorer.ui.repaint import update_static
from explorer.ui.views import ColourLayer, LayerView

GRADIENT_STEPS = 16


def gradient(scale: Scale, steps: int = GRADIENT_STEPS) -> Text:
    out = Text()
    for i in range(steps):
        out.append(" ", style=scale.style(i / (steps - 1)))
    return out


def plural(count: int, noun: str) -> str:
    """`1 token`, `24 tokens`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# The header's parts, dropped whole from the lowest priority up until the line fits the
# terminal (a part cut in the middle once hid the colour layer's name at 80 columns).
_TITLE, _HARDWARE, _MODEL, _PROMPT, _VIEW, _CONSTRAINT, _TOKENS, _COLOUR, _BUSY, _POSITION = range(10)


class HeaderLine(Static):
    """model · device · dtype │ prompt i/n · tokens │ colour layer │ layer view │ activity."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._parts: list[tuple[int, Text]] = []

    def loading(self, model: str, state: str) -> None:
        self._set_parts([(_TITLE, Text("Token Explorer", "bold")), (_MODEL, Text(model, "bold")),
                         (_BUSY, Text(state))])

    def show(
        self,
        *,
        model: str,
        device: str,
        dtype: str,
        prompt_index: int,
        prompts: int,
        tokens: int,
        layer: ColourLayer,
        view: LayerView | None,
        busy: str = "",
        constraint: str = "",
        constraint_broken: bool = False,
        position: str = "",
    ) -> None:
        parts = [
            (_TITLE, Text("Token Explorer", "bold")),
            (_MODEL, Text(model, "bold")),
            (_HARDWARE, Text(f"{device} · {dtype}")),
            (_PROMPT, Text(f"prompt {prompt_index}/{prompts}", "bold")),
            (_TOKENS, Text(plural(tokens, "token"))),
        ]
        if position:  # the position cursor (issue 23): "position k/n"
            parts.append((_POSITION, Text(position, "bold reverse")))
        parts += [
            (_COLOUR, Text.assemble("colour: ", (layer.value, "bold"))),
        ]
        if view is not None:
            parts.append((_VIEW, Text.assemble("layers: ", (view.value, "bold"))))
        if constraint:
            parts.append((_CONSTRAINT, Text.assemble(
                "constraint: ", (constraint, "bold red" if constraint_broken else "bold"))))
        if busy:
            parts.append((_BUSY, Text(busy, "italic")))
        self._set_parts(parts)

    def _set_parts(self, parts: list[tuple[int, Text]]) -> None:
        self._parts = parts
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        width = self.content_size.width or self.app.size.width - 2
        kept = list(self._parts)
        line = self._join(kept)
        while line.cell_len > width and len(kept) > 1:
            kept.remove(min(kept, key=lambda part: part[0]))
            line = self._join(kept)
        update_static(self, line)

    @staticmethod
    def _join(parts: list[tuple[int, Text]]) -> Text:
        """title  model · device · dtype  │  prompt · tokens  │  colour  │  ..."""
        out = Text()
        previous = None
        for rank, text in parts:
            if previous is not None:
                if rank == _HARDWARE and previous == _MODEL or rank == _TOKENS and previous == _PROMPT:
                    out.append(" · ")
                elif previous == _TITLE:
                    out.append("  ")
                else:
                    out.append("  │  ")
            out.append_text(text)
            previous = rank
        return out


class Legend(Static):
    """The active colour scale and what it means."""

    def show(self, layer: ColourLayer, view: LayerView | None, note: str = "", *,
             scale: Scale | None = None, meaning: str | None = None, rows: str | None = None) -> None:
        """scale/meaning: for layers whose scale depends on more than the layer itself
        (attribution: its method and target); rows: what the table rows' looks mean (a
        constraint's forbidden tokens)."""
        out = Text()
        scale = scale or layer.scale
        if scale is None:
            out.append("colour: none (e cycles probability → entropy → influence; i: attribution)", "dim")
        else:
            meaning = meaning or {
                ColourLayer.PROBABILITY: "p of each token under the previous position",
                ColourLayer.ENTROPY: "entropy H/ln V of the prediction of each token",
                ColourLayer.INFLUENCE: "attention influence on the next-token prediction",
            }.get(layer, "")
            out.append(f"{scale.name} ", "bold")
            out.append(f"{scale.low_label} ")
            out.append_text(gradient(scale))
            out.append(f" {scale.high_label}  ")
            if layer in (ColourLayer.PROBABILITY, ColourLayer.ENTROPY):
                out.append("  ", style=scale.style(None))
                out.append(" no prediction  ")
            out.append(meaning, "dim")
        if view is not None and view is not LayerView.NONE:
            out.append("\n")
            out.append(f"{view.value} ", "bold")
            out.append(f"{LAYER.low_label} ")
            out.append_text(gradient(LAYER))
            out.append(f" {LAYER.high_label}  ")
            what = (
                "logit-lens p of the token at each layer"
                if view is LayerView.PROBABILITIES
                else "p at each layer / its maximum over layers"
            )
            out.append(what, "dim")
        if note:
            out.append("\n")
            out.append(note, "dim")
        if rows:
            out.append("\n")
            out.append(rows, "dim")
        update_static(self, out)


class LoadingPanel(Vertical):
    """Shown until the first prompt is on screen: spinner, stage message, progress."""

    def compose(self) -> ComposeResult:
        yield LoadingIndicator(id="loading-spinner")
        yield Static("Starting…", id="loading-message")
        yield ProgressBar(id="loading-progress", show_eta=False)

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False

    def say(self, message: str) -> None:
        self.query_one("#loading-message", Static).update(message)

    def progress(self, done: int, total: int) -> None:
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(total=total, progress=done)

    def fail(self, message: str) -> None:
        """Start-up failed: keep the reason on screen (no spinner suggesting work)."""
        self.query_one(LoadingIndicator).display = False
        self.query_one(ProgressBar).display = False
        self.add_class("-failed")
        self.say(f"{message}\n\nPress ctrl+q to quit.")


class BusyBar(Horizontal):
    """A one-line progress bar for long prefills after start-up (e.g. a rebuilt cache)."""

    def compose(self) -> ComposeResult:
        yield Label("", id="busy-label")
        yield ProgressBar(id="busy-progress", show_eta=False)

    def progress(self, label: str, done: int, total: int) -> None:
        self.display = True
        self.query_one(Label).update(label)
        self.query_one(ProgressBar).update(total=total, progress=done)

    def done(self) -> None:
        self.display = False
