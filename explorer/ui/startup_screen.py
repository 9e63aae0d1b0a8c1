"""The start-up screen: from launch until the first prompt is drawn.

It shows the header, what is being loaded and its progress, and if the start fails, the
one-sentence reason and how to quit. The work itself runs in a worker (explorer.ui.startup);
the app pops this screen once the first prompt is on screen, so the main screen never
holds start-up widgets.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from explorer.ui.chrome import HeaderLine, LoadingPanel


class ResumeLine(Static):
    """"Resume last session …" when one is saved for this model: a click opens it once the
    model is loaded (the palette's "Resume last session" does the same later)."""

    DEFAULT_CSS = "ResumeLine { margin: 1 2; color: $accent; text-style: bold; }"

    def on_click(self, event: events.Click) -> None:
        event.stop()
        from explorer.ui.share_actions import choose_resume

        choose_resume(self.app)
        self.update("Resuming the last session once the model is loaded…")


class StartupScreen(Screen):
    def compose(self) -> ComposeResult:
        yield HeaderLine(id="header")
        yield LoadingPanel(id="loading")
        offer = None
        if getattr(self.app, "keep_session", False) and self.app.resume_state is None:
            from explorer.ui.share_actions import resume_offer

            offer = resume_offer(self.app.settings)
        if offer:
            yield ResumeLine(offer, id="resume-line")
        yield Footer()

    @property
    def panel(self) -> LoadingPanel:
        return self.query_one(LoadingPanel)

    def on_screen_resume(self) -> None:
        # The first prompt arrived while another screen (the palette) was on top of this one.
        if getattr(self.app, "started", False):
            self.dismiss()
