"""The comparison keys of the MainScreen: `v` (the shown prompt against another branch of
the book) and `V` (model A against model B on the shown prompt), their palette commands,
and loading model B beside A when the app was started with --compare MODEL,
--compare-dtype DTYPE or --compare-server URL (in a worker, after A's first prompt shows,
so A's start-up never waits for B). The screens are explorer.ui.compare_screen."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import SystemCommand
from textual.binding import Binding
from textual.message import Message

from explorer.ui.compare_screen import BranchScreen, ModelScreen

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
            why = ("Model B is still loading." if self.loading_b else
                   "No second model is loaded; start with --compare MODEL, --compare-dtype DTYPE "
                   "or --compare-server URL.")
            self.screen.notify(why, title="Compare", severity="warning", timeout=6)
            return
        self.screen.app.push_screen(ModelScreen(core), callback=lambda _: self.screen.redraw())

    def commands(self):
        yield SystemCommand("Compare branches", "The current prompt against its parent fork (tab: another prompt)",
                            self.branches)
        yield SystemCommand("Compare models", "Model A against model B (--compare) on the current prompt",
                            self.models)

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
