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


class HeaderLine(Static):
    """model · device · dtype │ prompt i/n · tokens │ colour layer │ layer view │ activity."""

    def loading(self, model: str, state: str) -> None:
        update_static(self, Text.assemble(("Token Explorer", "bold"), "  ", (model, "bold"), f"  │  {state}"))

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
    ) -> None:
        out = Text.assemble(
            ("Token Explorer", "bold"),
            "  ",
            (f"{model}", "bold"),
            f" · {device} · {dtype}  │  ",
            (f"prompt {prompt_index}/{prompts}", "bold"),
            f" · {tokens} tokens  │  colour: ",
            (layer.value, "bold"),
        )
        if view is not None:
            out.append("  │  layers: ")
            out.append(view.value, "bold")
        if constraint:
            out.append("  │  constraint: ")
            out.append(constraint, "bold red" if constraint_broken else "bold")
        if busy:
            out.append(f"  │  {busy}", "italic")
        update_static(self, out)


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
            out.append("colour: none (e cycles probability → entropy → influence → attribution)", "dim")
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
