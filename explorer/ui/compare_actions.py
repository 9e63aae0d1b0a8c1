"""The comparison keys of the MainScreen: `v` (the shown prompt against another branch of
the book) and `V` (model A against model B on the shown prompt), their palette commands,
and loading model B beside A when the app was started with --compare MODEL,
--compare-dtype DTYPE or --compare-server URL (in a worker, after A's first prompt shows,
so A's start-up never waits for B), or when one is chosen in the model picker (`V` with
no model B, or the palette's "Choose model B"). The screens are explorer.ui.compare_screen."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import SystemCommand
from textual.binding import Binding
from textual.message import Message

from explorer.flags import local_model_b
from explorer.ui.compare_screen import BranchScreen, ModelScreen
from explorer.ui.model_switch import ModelPicker

COMPARE_BINDINGS = [
    Binding("v", "compare_branches", "Compare branches", id="view.compare_branches", show=False),
    Binding("V", "compare_models", "Compare models", id="view.compare_models", show=False),
]


@dataclass
class SecondModelLoaded(Message):
    backend: object | None
    error: str | None = None


class CompareActions:
    def __init__(self, screen) -> None:
        self.screen = screen
        self.loading_b = False  # model B is being loaded (public: tests wait on it)

    def branches(self) -> None:
        self.screen.app.push_screen(BranchScreen(self.screen.core))

    def models(self) -> None:
        core = self.screen.core
        if core.comparisons.backend_b is None:
            if self.loading_b:
                self.screen.notify("Model B is still loading.", title="Compare", severity="warning",
                                   timeout=6)
            else:  # no model B yet: choose one
                self.choose_b()
            return
        self.screen.app.push_screen(ModelScreen(core), callback=lambda _: self.screen.redraw())

    def choose_b(self) -> None:
        """The model picker, for model B: another model, or model A at another dtype."""
        s = self.screen
        if s.lane is None or self.loading_b:
            return
        info = s.engine.info
        # A at another dtype means A's own weights: only when A is a local model.
        dtype = None if s.settings.server.url else str(info.dtype)
        s.app.push_screen(ModelPicker(info.name, for_b=True, dtype=dtype), self.chosen)

    def chosen(self, name: str | None) -> None:
        """Load the picked model B (a name, a folder, or "dtype:NAME" for A's weights)."""
        name = (name or "").strip()
        if not name:
            return
        # A picked model is local, like --compare MODEL.
        dtype = name.removeprefix("dtype:") if name.startswith("dtype:") else None
        b = local_model_b(self.screen.settings, name=None if dtype else name, dtype=dtype)
        self.screen.notify(f"Loading model B ({name.removeprefix('dtype:')}); V compares once it is ready.",
                           title="Compare", timeout=5)
        self.load_b(b)

    def commands(self):
        yield SystemCommand("Compare branches", "The current prompt against its parent fork (tab: another prompt)",
                            self.branches)
        yield SystemCommand("Compare models", "Model A against model B on the current prompt",
                            self.models)
        yield SystemCommand("Choose model B", "Pick the model to compare with (another model, or this one "
                            "at another dtype)", self.choose_b)

    # -- model B ---------------------------------------------------------------------------
    def load_b(self, settings_b) -> None:
        """Open model B (settings_b: explorer.flags.compare_settings) in a thread worker."""
        if settings_b is None:
            return
        self.loading_b = True
        screen = self.screen

        def load() -> None:
            from explorer.backend import open_backend

            try:
                backend = open_backend(settings_b, influence=False)
            except Exception as exc:  # noqa: BLE001 - one sentence on screen
                screen.post_message(SecondModelLoaded(None, str(exc) or type(exc).__name__))
                return
            screen.post_message(SecondModelLoaded(backend))

        screen.run_worker(load, thread=True, exit_on_error=False, group="compare-b", name="model B")

    def loaded(self, message: SecondModelLoaded) -> None:
        from explorer.compare import CompareError

        self.loading_b = False
        if message.error is not None:
            self.screen.notify(f"Model B could not load: {message.error}", title="Compare",
                               severity="error", timeout=10)
            return
        try:
            self.screen.core.comparisons.use_backend(message.backend)
        except CompareError as exc:
            self.screen.notify(str(exc), title="Compare", severity="error", timeout=10)
            return
        info = message.backend.info
        self.screen.notify(f"Model B: {info.name} ({info.dtype}); V compares it with model A.",
                           title="Compare", timeout=5)
