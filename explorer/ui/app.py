"""TokenExplorerApp: wires the screens and does what is app-wide.

Start-up (explorer.ui.startup_screen, the load in explorer.ui.startup) shows until the first
prompt is drawn; the main screen (explorer.ui.main_screen) owns the prompt, the table and
their keys, and calls the explorer core; the token tree (explorer.ui.tree_screen) is pushed
over it. The app holds the settings, quits (closing servers), lists the palette's commands,
and holds the keys pressed during start-up to press them once the prompt is on screen.
"""

from __future__ import annotations

from pathlib import Path

from textual import events, work
from textual.app import App
from textual.binding import Binding

from explorer.backend import close_servers
from explorer.config import Settings
from explorer.ui import startup
from explorer.ui.chrome import HeaderLine
from explorer.ui.main_screen import MainScreen
from explorer.ui.messages import LoadFailed, Loaded, LoadProgress
from explorer.ui.key_queue import KeyQueue, apply_keymap
from explorer.ui.startup_screen import StartupScreen
from explorer.ui.tree_screen import TreeScreen


class TokenExplorerApp(App):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "Token Explorer"
    # A short terminal (-short on the screen) gives the table the rows the prompt would take.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (20, "-tall")]
    # A narrow one stacks the sampler panel's labels above their fields.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (60, "-wide")]
    # Every screen has these (the main screen lists them again, for its footer's order).
    BINDINGS = [
        Binding("question_mark,f1", "toggle_keys", "Keys", id="app.keys", key_display="?"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(self, settings: Settings | None = None, *, input_path: Path | None = None,
                 engine=None, prompt_text: str | None = None) -> None:
        """`engine`: an already open backend (tests share one); otherwise one is opened
        from settings.model in a worker while the loading panel shows progress.
        `prompt_text` (--prompt): the prompt itself, instead of a file."""
        super().__init__()
        self.settings = settings or Settings()
        self.input_path = input_path
        self.prompt_text = prompt_text
        self._engine = engine  # handed to start-up; the main screen's core owns it after
        self._owns_engine = engine is None  # opened here (not a test's shared one)
        self.start_error: str | None = None  # one sentence when the model could not load
        self.startup: StartupScreen | None = StartupScreen()  # until the first prompt shows
        self.keys = KeyQueue(self)  # keys pressed during start-up, pressed after it
        self._main: MainScreen | None = None  # made when Textual asks for the default screen

    def get_default_screen(self) -> MainScreen:
        self._main = MainScreen(self.settings)
        return self._main

    async def on_mount(self) -> None:
        apply_keymap(self, MainScreen.BINDINGS)
        await self.push_screen(self.startup)
        self.startup.query_one(HeaderLine).loading(startup.wanted_name(self.settings), "loading…")
        self._load()

    # -- public surface (tests and scripts read these; the rest is app.main's) ---------------
    @property
    def main(self) -> MainScreen:
        """The main screen, under any pushed screen (start-up, tree, dialogs); it stays
        readable after the app has quit (tests read what it ended with)."""
        return self._main

    @property
    def started(self) -> bool:
        """The first prompt is on screen (start-up is over)."""
        return self.startup is None

    @property
    def start_failed(self) -> bool:
        return self.start_error is not None

    @property
    def is_idle(self) -> bool:
        """Loaded, nothing queued or computing (a token tree growing counts), the keys
        pressed during start-up pressed, and the screen shows the current prompt."""
        growing = isinstance(self.screen, TreeScreen) and self.screen.growing
        lane = self.main.lane
        return lane is not None and lane.is_idle and not growing and not self.keys.waiting

    def action_toggle_keys(self) -> None:
        """`?`: show or hide Textual's keys panel beside the main view."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_quit(self) -> None:
        # A start that failed is a failed run for scripts too; cli prints the reason again.
        self.exit(return_code=1 if self.start_failed else 0)

    def exit(self, *args, **kwargs) -> None:
        if self._owns_engine and self.settings.server.url:
            # A worker waiting on a server (connecting, or any request) would hold the
            # process after quit until its deadline (asyncio joins worker threads):
            # end those requests now. A test's shared backend is left alone.
            close_servers()
        super().exit(*args, **kwargs)

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        if self.main.lane is not None:
            yield from self.main.commands()

    # -- start-up ----------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, name="load", group="load")
    def _load(self) -> None:
        startup.load(self.post_message, self.settings, self.input_path, self._engine,
                     prompt_text=self.prompt_text)

    def on_load_progress(self, message: LoadProgress) -> None:
        self.startup.panel.say(message.text)

    def on_load_failed(self, message: LoadFailed) -> None:
        self.fail_start(message.text)

    def fail_start(self, text: str) -> None:
        """The model or the first prompt could not be read: say why; only quitting works."""
        self.start_error = text
        self.startup.panel.fail(text)
        if self.main.core is None:
            self.startup.query_one(HeaderLine).loading(startup.wanted_name(self.settings), "could not start")
        self.notify(text, title="Could not start", severity="error", timeout=30)

    def on_loaded(self, message: Loaded) -> None:
        for text in message.errors:
            self.notify(text, title="Input file", severity="error", timeout=10)
        for text in message.warnings:
            self.notify(text, title="Input file", severity="warning", timeout=10)
        self.startup.panel.say(f"Reading the prompt ({len(message.ids)} tokens)…")
        self.main.open(message)

    def leave_startup(self) -> None:
        """The first prompt is drawn: show the main screen, press the keys held meanwhile."""
        startup_screen, self.startup = self.startup, None
        if self.screen is startup_screen:
            self.pop_screen()
        # else something (the palette) is on top: the screen pops itself when it is resumed
        self.main.table.focus()
        self.keys.replay()

    async def on_event(self, event) -> None:
        if isinstance(event, events.Key) and self.keys.route(event):
            return  # held during start-up, queued behind held keys, or it stopped autoplay
        await super().on_event(event)
