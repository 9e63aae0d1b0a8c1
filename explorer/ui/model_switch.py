"""Switching models without restarting: ctrl+o (or the palette's "Switch model").

The picker lists the built-in models, recently used folders and the models in the local
Hugging Face cache with their sizes (explorer.backend.catalog), and takes a typed hub id
or folder. The chosen model opens in a thread worker through the backend factory while
the current one keeps working; only when it has loaded, and the current model's running
job has stopped, does the main screen swap backends. Every prompt is carried over (ids kept when
the new tokenizer reads them as the same text, else re-tokenised with a warning:
explorer.session.carry), and so are the pinned tokens (by their text) and the sampler's
settings and seed. A model that fails to load changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from explorer.backend import open_backend
from explorer.backend.catalog import ModelChoice, model_choices, remember
from explorer.ui import startup
from explorer.ui.chrome import BusyBar


@dataclass
class SwitchProgress(Message):
    generation: int
    text: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SwitchProgress)


@dataclass
class SwitchDone(Message):
    generation: int
    name: str
    backend: Any = None  # an explorer.backend.Backend, or None when it failed
    error: str = ""  # one sentence when it failed


def open_model(post, settings, name: str, generation: int) -> None:
    """Worker body: open `name` with the current settings otherwise; report once."""
    try:
        # A name from the picker is a local model, even in a session that began on a server.
        wanted = replace(settings, model=replace(settings.model, name=name, named_by=""),
                         server=replace(settings.server, url=""))
        backend = open_backend(wanted, progress=lambda text: post(SwitchProgress(generation, text)))
    except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence on screen
        post(SwitchDone(generation, name, error=startup.describe(exc)))
    else:
        post(SwitchDone(generation, name, backend=backend))


# Model B may be model A's own weights at another dtype (bf16 against fp32, say): the
# picker for B lists these first, as "dtype:NAME".
DTYPE_CHOICES = ("float32", "bfloat16", "float16")


class ModelPicker(ModalScreen[str | None]):
    """Choose or type a model; dismisses with its name, or None. For model B (`for_b`) it
    also offers model A at another dtype than `dtype` (None: A is a server's, so not),
    dismissing with "dtype:NAME"."""

    DEFAULT_CSS = """
    ModelPicker { align: center middle; }
    ModelPicker > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 80%;
        border: round $primary; background: $panel; padding: 0 1;
    }
    ModelPicker OptionList { height: auto; max-height: 20; }
    ModelPicker Label { width: 1fr; }  /* wraps on a narrow terminal */
    """
    BINDINGS = [Binding("escape", "dismiss_picker", "Close")]

    def __init__(self, current: str, *, for_b: bool = False, dtype: str | None = None) -> None:
        super().__init__()
        self.current, self.for_b, self.dtype = current, for_b, dtype
        self.choices: list[ModelChoice] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Model B, to compare with {self.current}: pick one, or type a hub id or folder."
                        if self.for_b else
                        f"Switch model (now: {self.current}). Pick one, or type a hub id or folder.")
            yield Input(placeholder="hub id or folder; enter loads it", id="picker-input")
            yield OptionList(id="picker-list")

    def on_mount(self) -> None:
        self.query_one(OptionList).add_option(Option("Looking for models…", disabled=True))
        self._find_choices()

    @work(thread=True, exit_on_error=False, group="picker")
    def _find_choices(self) -> None:
        choices = model_choices()  # scans the hub cache: can take a moment
        self.app.call_from_thread(self._show_choices, choices)

    def _show_choices(self, choices: list[ModelChoice]) -> None:
        self.choices = choices
        options = self.query_one(OptionList)
        options.clear_options()
        if self.for_b and self.dtype is not None:
            options.add_options([Option(f"{self.current} at {d} (the same weights)", id=f"dtype:{d}")
                                 for d in DTYPE_CHOICES if d != self.dtype])
        options.add_options([Option(c.label, id=c.name) for c in choices])
        if options.option_count:
            options.highlighted = 0

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.dismiss(event.option.id)

    @on(Input.Submitted)
    def _typed(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if value:
            self.dismiss(value)
            return
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    def action_dismiss_picker(self) -> None:
        self.dismiss(None)


class ModelSwitcher:
    """The model switch of `screen` (explorer.ui.main_screen.MainScreen, which binds ctrl+o
    to pick() and hands its SwitchProgress and SwitchDone messages here)."""

    def __init__(self, screen) -> None:
        self.screen = screen
        self._generation = 0
        self._pending: SwitchDone | None = None

    @property
    def switching(self) -> bool:
        """A model is loading (or waits for the current job to stop) to replace this one."""
        loading = any(w.group == "switch" and not w.is_finished for w in self.screen.app.workers)
        return loading or self._pending is not None

    def switch_model(self, name: str | None) -> None:
        """Open model `name` in a worker and swap to it when loaded; None does nothing."""
        s = self.screen
        name = (name or "").strip()
        if not name or s.lane is None:
            return
        self._generation += 1
        s.notify(f"Loading {name}; {s.engine.info.name} keeps working until it is ready.",
                 title="Model")
        s.run_worker(partial(open_model, s.post_message, s.settings, name, self._generation),
                     thread=True, exit_on_error=False, group="switch", name=f"switch:{name}")

    def pick(self) -> None:
        s = self.screen
        if s.lane is not None:
            s.app.push_screen(ModelPicker(s.engine.info.name), self.switch_model)

    def commands(self):
        """The command palette's entry."""
        yield SystemCommand("Switch model", "Load another model (ctrl+o); the prompts stay", self.pick)

    # -- messages from the worker -----------------------------------------------------------
    def progress(self, message: SwitchProgress) -> None:
        if message.generation == self._generation:
            self.screen.query_one(BusyBar).progress(message.text + " ", 0, None)

    def done(self, message: SwitchDone) -> None:
        stale = message.generation != self._generation
        if message.backend is None:
            if not stale:
                self.screen.query_one(BusyBar).done()
                self.screen.notify(f"{message.error} Still on {self.screen.engine.info.name}.",
                                   title="Could not switch model", severity="error", timeout=15)
            return
        if stale:  # a newer choice was made while this one loaded
            message.backend.close()
            return
        self._pending = message
        self.swap_when_idle()

    def swap_when_idle(self) -> None:
        """Swap once the current backend runs no job: two backends never share a lane."""
        s = self.screen
        if self._pending is None or s.lane is None:
            return
        if s.lane.stop_for_swap():
            return  # a job still runs: its JobDone brings us back here
        done, self._pending = self._pending, None
        app = s.app
        app.settings = replace(app.settings, model=replace(app.settings.model, name=done.name),
                               server=replace(app.settings.server, url=""))
        # Prompts and pins carried by their text, the sampler's knobs and seed kept.
        warnings = s.core.switch(done.backend, done.name)
        s.drawing.drawn = None
        remember(done.name)
        s.query_one(BusyBar).done()
        s.notify(f"Now on {done.backend.info.name}.", title="Model")
        for text in warnings:
            s.notify(text, title="Model", severity="warning", timeout=15)
        app.refresh_bindings()
        s.redraw()
