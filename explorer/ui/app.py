"""TokenExplorerApp: the prompt, its colour layers, and the next-token table.

The app wires three things together and draws: start-up (explorer.ui.startup), the
key-press lane (explorer.session.Lane: order of presses, one model job at a time) and the
main view (explorer.ui.main_view). Model work runs only in thread workers (explorer.ui.jobs).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import Footer

from explorer.backend import Capabilities, Cancelled, close_servers
from explorer.backend.types import ATTRIBUTION_LABELS, ATTRIBUTION_METHODS
from explorer.config import Settings
from explorer.session import Job, Lane, PromptBook
from explorer.session.explorer import Explorer
from explorer.session.book import Prompt
from explorer.ui import jobs, startup
from explorer.ui.startup_screen import StartupScreen
from explorer.ui.text_input import TextPrompt
from explorer.ui.chrome import BusyBar, HeaderLine
from explorer.ui.main_view import Look, MainView
from explorer.ui.messages import ChainProgress, JobDone, JobProgress, LoadFailed, Loaded, LoadProgress
from explorer.ui.model_switch import ModelSwitching
from explorer.ui.next_table import NextTokenTable
from explorer.ui.tree_screen import TreeScreen
from explorer.ui.sampler_actions import SAMPLER_ACTIONS, SAMPLER_BINDINGS, SamplerActions
from explorer.ui.constraint_actions import CONSTRAINT_ACTIONS, CONSTRAINT_BINDINGS, ConstraintActions
from explorer.ui.view_actions import ViewActions
from explorer.ui.views import ColourLayer, LayerView
from explorer.session.views import AttributionView, JobKind, View, is_background

# (book press, palette title, palette help) for the command palette.
PALETTE = [
    ("save", "Save prompt", "Write the current prompt to prompts/ (.txt, .json and a per-token .jsonl)"),
    ("fork", "Fork prompt", "Copy the current prompt and move to the copy"),
    ("remove", "Remove prompt", "Remove the current prompt (never the last one)"),
    ("reset", "Reset prompt", "Go back to the prompt's original tokens"),
    ("next", "Next prompt", "Move to the next prompt"),
    ("previous", "Previous prompt", "Move to the previous prompt"),
    ("append", "Append selected token", "Append the token under the table cursor"),
    ("pop", "Pop last token", "Remove the prompt's last token"),
]

# What a key may do during start-up; every other key waits until the prompt is on screen.
START_ACTIONS = frozenset({"quit", "toggle_keys", "command_palette", "help_quit", "screenshot"})
# A job shorter than this never says "computing": a fast key press then repaints the
# screen once, with its result, instead of twice a frame apart.
BUSY_AFTER_S = 0.15
# While presses queue behind the model, the screen shows the newest state this often.
BURST_DRAW_S = 0.05


class TokenExplorerApp(ModelSwitching, ConstraintActions, SamplerActions, ViewActions, App):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "Token Explorer"
    # A short terminal (-short on the screen) gives the table the rows the prompt would take.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (20, "-tall")]
    # A narrow one stacks the sampler panel's labels above their fields.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (60, "-wide")]

    BINDINGS = [
        Binding("right,l", "book('append')", "Append", id="prompt.append", key_display="→/l"),
        Binding("left,h", "book('pop')", "Pop", id="prompt.pop", key_display="←/h"),
        # The footer holds what fits in 120 columns; `?` opens the keys panel, which
        # lists every binding (show=False ones too) with what it does.
        Binding("question_mark,f1", "toggle_keys", "Keys", id="app.keys", key_display="?"),
        Binding("w", "book('previous')", "Prev", id="prompt.previous", show=False),
        Binding("s", "book('next')", "Next", id="prompt.next", show=False),
        Binding("d", "book('fork')", "Fork", id="prompt.fork"),
        Binding("a", "book('remove')", "Remove prompt", id="prompt.remove", show=False),
        Binding("x", "book('save')", "Save", id="prompt.save"),
        Binding("ctrl+r", "book('reset')", "Reset prompt", id="prompt.reset", show=False),
        Binding("e", "cycle_colour", "Colour", id="view.colour"),
        Binding("p", "cycle_layer_view", "Layer view", id="view.layers", show=False),
        Binding("i", "cycle_attribution", "Attribution method", id="view.attribution_method",
                show=False),
        Binding("I", "cycle_baseline", "Integrated gradients baseline",
                id="view.attribution_baseline", show=False),
        Binding("escape", "cancel_attribution", "Cancel attribution", id="view.cancel", show=False),
        Binding("b", "grow_tree", "Token tree", id="view.tree", show=False),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        *SAMPLER_BINDINGS,
        *CONSTRAINT_BINDINGS,
        Binding("ctrl+o", "switch_model", "Switch model", id="app.model", show=False),
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
        self._engine = engine  # the backend until the core owns it (explorer.backend.Backend)
        self._owns_engine = engine is None  # opened here (not a test's shared one)
        self.core: Explorer | None = None  # the explorer core, once the first prompt is read
        self.colour = ColourLayer.NONE
        self.layer_view = LayerView.NONE
        self.attribution_method = ATTRIBUTION_METHODS[0]  # i cycles through the methods
        self.attribution_baseline = self.settings.attribution.baseline  # I cycles these
        self.start_error: str | None = None  # one sentence when the model could not load
        self._drawn: tuple | None = None
        self._drawn_at = 0.0  # time.monotonic() of the last draw
        self._draw_timer = None
        self._last_note: tuple[str, float] = ("", 0.0)
        self._busy_since: float | None = None
        self._busy_timer = None
        self._startup: StartupScreen | None = StartupScreen()  # until the first prompt shows
        self._held: list[events.Key] = []  # keys pressed during start-up, pressed after it
        self._replaying: list[events.Key] = []  # held keys posted again, not yet handled

    # -- layout ------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield HeaderLine(id="header")
        yield MainView(id="main")
        yield BusyBar(id="busy")
        yield Footer()

    async def on_mount(self) -> None:
        self.main_screen.query_one(BusyBar).display = False
        self._apply_keymap()
        await self.push_screen(self._startup)
        self._show_header()
        self._load()

    def _apply_keymap(self) -> None:
        keys = dict(self.settings.keys)
        if not keys:
            return
        known = {b.id for b in self.BINDINGS if b.id} | {
            b.id for b in NextTokenTable.BINDINGS if isinstance(b, Binding) and b.id}
        unknown = sorted(set(keys) - known)
        if unknown:
            self.notify(f"config.toml [keys]: no binding is called {unknown[0]!r} "
                        f"(known: {', '.join(sorted(known))}).", title="Keys", severity="warning")
        self.set_keymap({k: v for k, v in keys.items() if k in known})

    # -- public surface (tests and scripts read these) -------------------------------------
    @property
    def engine(self):
        """The backend: the core's, once it is open (a model switch swaps it there)."""
        return self._engine if self.core is None else self.core.backend

    @property
    def lane(self) -> Lane | None:
        return None if self.core is None else self.core.lane

    @property
    def book(self) -> PromptBook | None:
        return None if self.lane is None else self.lane.book

    @property
    def records(self):
        return () if self.lane is None else self.lane.records

    @property
    def shown(self):
        """(prompt key, ids) of what the screen shows, None before the first prompt."""
        return None if self.lane is None else self.lane.shown

    @property
    def table(self) -> NextTokenTable:
        return self.main_screen.query_one(NextTokenTable)

    @property
    def busy(self) -> bool:
        return self.lane is not None and self.lane.busy

    @property
    def started(self) -> bool:
        """The first prompt is on screen (start-up is over)."""
        return self._startup is None

    @property
    def start_failed(self) -> bool:
        return self.start_error is not None

    @property
    def is_idle(self) -> bool:
        """Loaded, nothing queued or computing (a token tree growing counts), and the
        screen shows the current prompt."""
        growing = isinstance(self.screen, TreeScreen) and self.screen.growing
        return (self.lane is not None and self.lane.is_idle and not growing
                and not self._held and not self._replaying)  # start-up's keys pressed too

    @property
    def layer_prob(self) -> bool:
        return self.settings.layer_prob

    @property
    def capabilities(self) -> Capabilities:
        return self.engine.capabilities if self.engine is not None else Capabilities()

    @property
    def look(self) -> Look:
        attribution = None
        if self.colour is ColourLayer.ATTRIBUTION and self.lane is not None:
            candidate = self.table.selected()
            records = self.lane.records
            if records and (self._drawn is None or self._drawn[1] != id(records)):
                # The table still lists the candidates of the records drawn before; the
                # draw about to happen shows these records' (MainView.draw), the cursor
                # staying on its row. Name (and ask for) what will be drawn.
                top, _ = self.core.table_candidates()  # a constraint lists its allowed ones
                candidate = top[min(self.table.cursor_row, len(top) - 1)] if top else None
            if candidate is not None:
                attribution = (self.attribution_method, candidate.token_id, candidate.text)
        return Look(self.colour, self.layer_view if self.layer_prob else None, self.capabilities,
                    attribution, tracking=bool(self.tracked_ids), baseline=self.attribution_baseline)

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

    def check_action(self, action: str, parameters) -> bool | None:
        # Until a prompt is on screen (loading, or the model failed) only quitting works.
        if (self.lane is None or isinstance(self.screen, TreeScreen)) and (
                action in ("book", "cycle_colour", "cycle_layer_view", "grow_tree",
                           "cycle_attribution", "cycle_baseline", "cancel_attribution")
                or action in SAMPLER_ACTIONS or action in CONSTRAINT_ACTIONS):
            return False
        return True

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        if self.lane is None:
            return
        for press, title, help_text in PALETTE:
            yield SystemCommand(title, help_text, partial(self.action_book, press))
        yield SystemCommand("Cycle colour layer",
                            "none → probability → entropy → influence → attribution",
                            self.action_cycle_colour)
        yield SystemCommand("Cycle layer view", "probabilities → correlations → none (--layer_prob)",
                            self.action_cycle_layer_view)
        yield from self.sampler_commands()
        yield from self.constraint_commands()
        yield from self.model_commands()

    # -- start-up ----------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, name="load", group="load")
    def _load(self) -> None:
        startup.load(self.post_message, self.settings, self.input_path, self.engine,
                     prompt_text=self.prompt_text)

    @property
    def main_screen(self):
        """The screen the app composes (header, prompt, table), under any pushed screen."""
        return self.screen_stack[0]

    @property
    def main_view(self) -> MainView:
        return self.main_screen.query_one(MainView)

    def _leave_startup(self) -> None:
        startup_screen, self._startup = self._startup, None
        if self.screen is startup_screen:
            self.pop_screen()
        # else something (the palette) is on top: the screen pops itself when it is resumed
        self.table.focus()
        # Keys pressed while loading are pressed now, each as its own message (a dialog's
        # key then opens the dialog before the characters typed behind it arrive).
        self._replaying, self._held = self._held, []
        for key in self._replaying:
            self.post_message(key)

    async def on_event(self, event) -> None:
        """Keys pressed during start-up (loading a model can take a minute) are held, in
        order, and pressed once the first prompt is on screen; only the keys that work
        during start-up (quit, the keys panel, the palette) act at once. A key pressed
        while the held ones are being pressed goes behind them."""
        if isinstance(event, events.Key) and event.is_forwarded and isinstance(self.screen, TextPrompt) \
                and event.time < self.screen.opened_at:
            # Typed right behind `t` or `M` (one burst): the key went to the table before
            # the dialog opened and comes back unhandled; it is the dialog's text.
            self.screen.type_key(event)
            return
        if isinstance(event, events.Key) and not event.is_forwarded:
            if self._holds(event.key):
                self._held.append(events.Key(event.key, event.character))
                return
            if self._replaying:
                if event is self._replaying[0]:
                    self._replaying.pop(0)
                else:
                    later = events.Key(event.key, event.character)
                    self._replaying.append(later)
                    self.post_message(later)
                    return
            if self.autoplaying and event.key != "ctrl+q":
                # Any key stops autoplay (and does nothing else), except quitting.
                event.stop()
                self._stop_autoplay("stopped by a key")
                self._after_lane()
                return
        await super().on_event(event)

    def _holds(self, key: str) -> bool:
        if self._startup is None or self.start_failed or self.screen is not self._startup:
            return False
        binding = self._startup.active_bindings.get(key)
        return binding is None or not binding.enabled or binding.binding.action not in START_ACTIONS

    def on_load_progress(self, message: LoadProgress) -> None:
        self._startup.panel.say(message.text)

    def on_load_failed(self, message: LoadFailed) -> None:
        self.start_error = message.text
        self._startup.panel.fail(message.text)
        self._show_header()
        self.notify(message.text, title="Could not start", severity="error", timeout=30)

    def on_loaded(self, message: Loaded) -> None:
        self._engine = message.backend
        for text in message.errors:
            self.notify(text, title="Input file", severity="error", timeout=10)
        for text in message.warnings:
            self.notify(text, title="Input file", severity="warning", timeout=10)
        self._startup.panel.say(f"Reading the prompt ({len(message.ids)} tokens)…")
        first = Prompt.new(message.ids, message.messages, original=message.original,
                           origins=message.origins)
        # Attributions run in the background, so a key that needs the model goes first.
        self.core = Explorer(message.backend, self.settings.sampling, start_job=self._start_job,
                             notify=self.notify, lane_note=self._lane_note, on_press=self._on_press,
                             background=is_background)
        self.core.open(PromptBook([first]))
        self.refresh_bindings()
        self._after_lane()

    # -- the lane's jobs ------------------------------------------------------------------
    def _start_job(self, job: Job) -> None:
        self.run_worker(partial(jobs.run_job, self.post_message, self.engine, job),
                        thread=True, exit_on_error=False, group="model", name=job.kind)

    def on_job_progress(self, message: JobProgress) -> None:
        running = self.lane.running
        if not self.screen_stack or running is None or running.id != message.job:
            return
        if self.lane.shown is None:
            if self._startup is not None:  # (None after a model switch: no start-up screen)
                self._startup.panel.progress(message.done, message.total)
        elif message.total > 1 and self._busy_since is not None \
                and time.monotonic() - self._busy_since >= BUSY_AFTER_S:
            # Only a long prefill gets the bar, not a held key's one-token steps: showing,
            # relabelling and hiding it each cost a layout pass.
            label = f"Reading prompt {message.done}/{message.total} "
            attributions = sorted((v for v in running.views if isinstance(v, AttributionView)), key=str)
            if running.kind is JobKind.VIEWS and attributions:
                # (counted in forward passes of one point, attribution_run.py: a share reads
                # better than the count)
                label = f"{ATTRIBUTION_LABELS[attributions[0].method]} (esc cancels) "
            elif running.kind is JobKind.VIEWS and View.TRACKED in running.views:  # a server's prefixes
                label = f"Tracking tokens {message.done}/{message.total} "
            self.main_screen.query_one(BusyBar).progress(label, message.done, message.total)

    def on_chain_progress(self, message: ChainProgress) -> None:
        self.lane.advance(message.job, message.ids, message.records, message.views)
        self._after_lane()

    def on_job_done(self, message: JobDone) -> None:
        running = self.lane.running
        error = message.error
        if error is not None and not isinstance(error, Cancelled) and running is not None \
                and running.id == message.job:
            if self.lane.shown is None:  # the first prompt never arrived: a failed start
                self.on_load_failed(LoadFailed(startup.describe(error)))
            else:
                self.notify(startup.describe(error), title="Model", severity="error", timeout=10)
            if running.kind is JobKind.VIEWS:
                # Without its data the view cannot be drawn; turn it off rather than retry.
                if self.colour in (ColourLayer.INFLUENCE, ColourLayer.ATTRIBUTION):
                    self.colour = ColourLayer.NONE
                self.layer_view = LayerView.NONE
            self._stop_autoplay(None)
        self.lane.finish(message.job, message.result, error)
        self._after_lane()
        self.core.autoplay_tick()
        self._after_lane()
        self._swap_when_idle()  # a model switch waits for the running job to stop

    def _lane_note(self, text: str, severity: str) -> None:
        # A held key repeats a refusal (popping the only token) dozens of times: say it once.
        now = time.monotonic()
        if self._last_note[0] == text and now - self._last_note[1] < 3:
            return
        self._last_note = (text, now)
        self.notify(text, severity=severity, timeout=2 if severity == "information" else 5)

    def _on_press(self, name: str) -> None:
        if name == "save":
            self._save()

    # -- key actions --------------------------------------------------------------------
    def action_book(self, press: str) -> None:
        """Every key that edits or moves in the prompt book goes through the lane, in order."""
        self.core.press(press, row=self.table.cursor_row)
        self._after_lane()

    def action_cycle_colour(self) -> None:
        self.colour = self.colour.next()
        self._after_lane()

    def action_cycle_layer_view(self) -> None:
        if not self.layer_prob:
            self.notify("Layer views need the logit lens: start with --layer_prob.",
                        title="Layer views", severity="warning")
            return
        self.layer_view = self.layer_view.next()
        self._after_lane()

    # -- drawing (no model work: the lane's records and view arrays only) ------------------
    def _after_lane(self) -> None:
        """Tell the lane what the look needs, then draw what it holds."""
        look = self.look
        self.core.sync_sampler()
        self.lane.want(look.views_wanted())
        lane = self.lane
        if lane.shown is not None:
            if self._startup is not None:  # the first prompt is drawn below: leave start-up
                self._leave_startup()
            main = self.main_view
            if lane.running is None:
                self.main_screen.query_one(BusyBar).done()
            # Redraw only when what is drawn changed: a press queued behind a job does not.
            drawn = (lane.shown, id(lane.records), tuple(sorted(lane.views, key=str)), look,
                     self.sampler_draw_key())
            if drawn != self._drawn:
                if self._burst_wait():
                    return  # the header too: both are drawn when the timer fires
                self._drawn, self._drawn_at = drawn, time.monotonic()
                main.draw(lane.records, lane.views, look, self.engine.token_bytes,
                          self.engine.special_ids, **self.sampler_drawing())
                self.forced_report()
        self._show_header()

    def _burst_wait(self) -> bool:
        """While presses wait behind the model (a held key outrunning it), draw the newest
        state at most every BURST_DRAW_S, not each one on the way: a draw costs the event
        loop ~10 ms that the model's worker thread would wait for. True: drawn later."""
        wait = BURST_DRAW_S - (time.monotonic() - self._drawn_at)
        if not self.lane.pending or wait <= 0:
            return False
        if self._draw_timer is None:
            self._draw_timer = self.set_timer(wait, self._draw_later)
        return True

    def _draw_later(self) -> None:
        self._draw_timer = None
        # A timer may fire while the app shuts down, after its screens are gone.
        if self.lane is not None and self.screen_stack:
            self._after_lane()

    def _show_header(self) -> None:
        if not self.screen_stack:  # the busy timer fired while the app shuts down
            return
        header = (self._startup or self.main_screen).query_one(HeaderLine)
        if self.engine is None or self.lane is None:
            header.loading(startup.wanted_name(self.settings),
                           "could not start" if self.start_error else "loading…")
            return
        lane, info = self.lane, self.engine.info
        busy = ""
        if lane.pending or lane.busy:
            now = time.monotonic()
            if self._busy_since is None:
                self._busy_since = now
                self._busy_timer = self.set_timer(BUSY_AFTER_S, self._show_header)
            if now - self._busy_since >= BUSY_AFTER_S:
                busy = f"computing ({lane.pending} queued)" if lane.pending else "computing"
        elif self._busy_since is not None:
            self._busy_since = None
            self._busy_timer.stop()
        header.show(
            model=info.name,
            device=info.device,
            dtype=info.dtype,
            prompt_index=lane.book.index + 1,
            prompts=len(lane.book),
            # What the screen shows (the panel below says the same), so that a press does
            # not repaint the header before its result arrives.
            tokens=len(lane.shown[1] if lane.shown else lane.book.current.ids),
            layer=self.colour,
            view=self.layer_view if self.layer_prob else None,
            busy=busy,
            **self.constraint_header(),
        )
