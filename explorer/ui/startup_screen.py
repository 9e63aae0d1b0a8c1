"""The start-up screen: from launch until the first prompt is drawn.

It shows the header, what is being loaded and its progress, and if the start fails, the
one-sentence reason and how to quit. The work itself runs in a worker (explorer.ui.startup);
the app pops this screen once the first prompt is on screen, so the main screen never
holds start-up widgets.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from explorer.ui.chrome import HeaderLine, LoadingPanel


class StartupScreen(Screen):
    def compose(self) -> ComposeResult:
        yield HeaderLine(id="header")
        yield LoadingPanel(id="loading")
        yield Footer()

    @property
    def panel(self) -> LoadingPanel:
        return self.query_one(LoadingPanel)

    def on_screen_resume(self) -> None:
        # The first prompt arrived while another screen (the palette) was on top of this one.
        if getattr(self.app, "started", False):
            self.dismiss()
