"""The main screen's keep-and-share keys: the plot panel (`P`), the HTML report (`H`), and
the session kept on quit and every few seconds (explorer.session.keep), resumed at start
(`--resume`) or from the palette ("Resume last session"). A part the screen composes and
calls (explorer.ui.main_screen), as the other *_actions parts.
"""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

from textual.app import SystemCommand
from textual.binding import Binding

from explorer.backend.types import ATTRIBUTION_BASELINES, ATTRIBUTION_METHODS
from explorer.report.data import LAYERS
from explorer.session.keep import SessionFileError, SessionKeeper, last_session, load_session, session_path
from explorer.session.views import View
from explorer.ui.views import ColourLayer, LayerView

SAVE_EVERY_S = 5.0
SHARE_BINDINGS = [
    Binding("P", "toggle_plot", "Plot", id="view.plot", show=False),
    Binding("H", "write_report", "HTML report", id="view.report", show=False),
]


class ShareActions:
    """Plot, report and session of `screen` (explorer.ui.main_screen.MainScreen)."""

    def __init__(self, screen) -> None:
        self.screen = screen
        self.plot = False
        self.keeper: SessionKeeper | None = None
        # The session saved before this one started: the keeper soon writes this one over
        # it, so "Resume last session" keeps it from the start.
        self.previous = None

    # -- plot panel (P) ---------------------------------------------------------------------
    def toggle_plot(self) -> None:
        self.plot = not self.plot
        self.screen.drawing.drawn = None  # draw again, with or without the panel
        self.screen.redraw()

    def draw_plot(self) -> None:
        s = self.screen
        lane = s.lane
        series = lane.views.get(View.TRACKED) if lane.tracked else None
        s.main_view.draw_plot(self.plot, lane.records, series, s.engine.token_text)

    # -- HTML report (H) ----------------------------------------------------------------------
    def write_report(self) -> None:
        from explorer.report.session import write_explorer_report

        s = self.screen
        colour = s.views.colour.name.lower()
        folder = s.settings.resolve(s.settings.prompts.save_dir)
        try:
            path = write_explorer_report(s.core, folder, layer=colour if colour in LAYERS else "probability")
        except OSError as exc:
            s.notify(f"Could not write the report to {folder}: {exc.strerror or type(exc).__name__}.",
                     title="Report", severity="error", timeout=10)
            return
        root = s.settings.resolve(".")
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        s.notify(f"Wrote {shown}: open it in any browser.", title="Report", timeout=6)

    # -- the session ----------------------------------------------------------------------------
    def ui_state(self) -> dict:
        s = self.screen
        return {"layer": s.views.colour.name, "layer_view": s.views.layer_view.name, "plot": self.plot,
                "attribution_method": s.views.attribution_method,
                "attribution_baseline": s.views.attribution_baseline, "position": s.core.cursor.index}

    def capture(self):
        s = self.screen
        if s.core is None or s.lane is None or s.lane.shown is None:
            return None  # nothing on screen yet (or a failed start): keep the last file
        return s.core.snapshot(s.engine.info.name, self.ui_state())

    def path(self) -> Path:
        """--session PATH (the app's session_file), else the model's own file."""
        return getattr(self.screen.app, "session_file", None) or session_path(self.screen.engine.info.name)

    def start_keeping(self) -> None:
        """Every SAVE_EVERY_S save what changed; `save()` on quit. Only where the app keeps
        sessions (the command line's app; a test's app does not write to the cache)."""
        if not getattr(self.screen.app, "keep_session", False) or self.keeper is not None:
            return
        if getattr(self.screen.app, "resume_state", None) is None:
            self.previous = _saved(self.path())
        self._ui_thread = threading.get_ident()
        self.keeper = SessionKeeper(self.path, self.capture, on_error=self._note_failed_save)
        self.screen.set_interval(SAVE_EVERY_S, self._save_in_background)

    def _save_in_background(self) -> None:
        """The state is read here, on the app's thread (the core is not locked); writing it
        (JSON, a temporary file, fsync, rename) runs on a thread, so a slow disk never
        delays a key. The keeper's lock keeps a quit's save after a write in flight."""
        state = self.capture()
        if state is not None:
            threading.Thread(target=self.keeper.save, args=(state,), name="session-save",
                             daemon=True).start()

    def _note_failed_save(self, text: str) -> None:
        notify = partial(self.screen.notify, text, title="Session", severity="warning", timeout=8)
        if threading.get_ident() == self._ui_thread:  # a quit's save
            notify()
        else:
            self.screen.app.call_from_thread(notify)

    def save(self) -> None:
        if self.keeper is not None:
            self.keeper.save()

    def resume(self, state) -> None:
        """Open `state` in the core and the screen's layer, layer view and plot panel."""
        s = self.screen
        for note in s.core.resume(state):
            s.notify(note, title="Session", severity="warning", timeout=10)
        ui = state.ui
        s.views.colour = ColourLayer.__members__.get(str(ui.get("layer")), ColourLayer.NONE)
        s.views.layer_view = LayerView.__members__.get(str(ui.get("layer_view")), LayerView.NONE)
        self.plot = bool(ui.get("plot"))
        if ui.get("attribution_method") in ATTRIBUTION_METHODS:  # (a file from an older version lacks it)
            s.views.attribution_method = ui["attribution_method"]
        if ui.get("attribution_baseline") in ATTRIBUTION_BASELINES:
            s.views.attribution_baseline = ui["attribution_baseline"]
        if isinstance(ui.get("position"), int):  # the position cursor, where it was
            s.core.cursor.put(ui["position"])
        s.drawing.drawn = None
        s.redraw()

    def resume_last(self) -> None:
        """The palette's "Resume last session": the one saved before this one started
        (without keeping sessions: this model's file)."""
        s = self.screen
        state = self.previous if self.keeper is not None else _saved(self.path())
        if state is None:
            s.notify(f"There is no earlier saved session for {s.engine.info.name}.", title="Session", timeout=5)
            return
        self.resume(state)

    def commands(self):
        yield SystemCommand("Plot panel", "Surprisal, entropy and pinned tokens along the prompt (P)",
                            self.toggle_plot)
        yield SystemCommand("Write HTML report", "One self-contained page of what the screen shows (H)",
                            self.write_report)
        yield SystemCommand("Resume last session", "Reopen this model's last saved session", self.resume_last)


def _saved(path: Path | None):
    """The session at `path`, None when there is none or it cannot be read."""
    try:
        return None if path is None else load_session(path)
    except SessionFileError:
        return None


def resume_offer(settings) -> str | None:
    """The start screen's "Resume last session" line when this model has a saved session."""
    from explorer.config import Settings

    state = _saved(last_session((settings or Settings()).model.name))  # (--session: not offered)
    if state is None:
        return None
    n = len(state.prompts)
    return (f"▶ Resume last session: {n} prompt{'s' if n != 1 else ''} on {state.model}, saved "
            f"{state.saved_at.replace('T', ' ')[:16]} UTC (click; later: ctrl+p → Resume last session)")


def choose_resume(app) -> None:
    """The line was clicked: the main screen opens the session instead of the prompt (or at
    once, when the prompt is already on screen)."""
    if app.main.core is not None:  # the model loaded meanwhile (and may have saved over it)
        app.main.share.resume_last()
        return
    state = _saved(app.session_file or last_session(app.settings.model.name))
    if state is None:
        app.notify(f"There is no saved session for {app.settings.model.name}.", title="Session", timeout=5)
    app.resume_state = state
