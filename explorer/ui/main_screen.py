"""MainScreen: the prompt, its colour layers and the next-token table, and every key that
works on them.

The screen owns its key bindings and widgets and calls the explorer core
(explorer.session.explorer.Explorer) for every verb, then draws the core's state
(explorer.ui.drawing). The keys' work is in plain parts the screen composes and calls
explicitly: SamplerActions (space, g, t, o, m, M), ConstraintActions (c, C), ViewActions
(e, p, i, I, esc, b, x) and ModelSwitcher (ctrl+o). Model work runs only in thread workers
(explorer.ui.jobs), which post their results here.
"""

from __future__ import annotations

from functools import partial

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from explorer.backend import Capabilities, Cancelled
from explorer.session import Lane, PromptBook
from explorer.session.book import Prompt
from explorer.session.explorer import Explorer
from explorer.session.views import JobKind, is_background
from explorer.ui import jobs, startup
from explorer.ui.chrome import BusyBar, HeaderLine
from explorer.ui.compare_actions import COMPARE_BINDINGS, CompareActions, SecondModelLoaded
from explorer.ui.constraint_actions import CONSTRAINT_BINDINGS, ConstraintActions
from explorer.ui.drawing import Drawing
from explorer.ui.main_view import Look, MainView
from explorer.ui.messages import ChainProgress, JobDone, JobProgress, Loaded
from explorer.ui.model_switch import ModelSwitcher, SwitchDone, SwitchProgress
from explorer.ui.next_table import NextTokenTable
from explorer.ui.sampler_actions import SAMPLER_BINDINGS, SamplerActions
from explorer.ui.share_actions import SHARE_BINDINGS, ShareActions
from explorer.ui.view_actions import ViewActions

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


class MainScreen(Screen):
    BINDINGS = [
        # `?` and ctrl+q are the app's (start-up has them too); listed here as well so the
        # footer keeps its order (ctrl+q first, as Textual's App lists it).
        Binding("ctrl+q", "app.quit", "Quit", id="app.quit", priority=True),
        Binding("right,l", "book('append')", "Append", id="prompt.append", key_display="→/l"),
        Binding("left,h", "book('pop')", "Pop", id="prompt.pop", key_display="←/h"),
        # The footer holds what fits in 120 columns; `?` opens the keys panel, which
        # lists every binding (show=False ones too) with what it does.
        Binding("question_mark,f1", "app.toggle_keys", "Keys", id="app.keys", key_display="?"),
        # The position cursor (issue 23): back and forth over the prompt's tokens.
        Binding("left_square_bracket,shift+left", "position(-1)", "Back a token", id="prompt.back",
                key_display="[", show=False),
        Binding("right_square_bracket,shift+right", "position(1)", "Forward a token",
                id="prompt.forward", key_display="]", show=False),
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
        Binding("escape", "cancel_attribution", "Attribution off", id="view.cancel", show=False),
        Binding("b", "grow_tree", "Token tree", id="view.tree", show=False),
        *SAMPLER_BINDINGS,
        *CONSTRAINT_BINDINGS,
        *COMPARE_BINDINGS,
        Binding("ctrl+o", "switch_model", "Switch model", id="app.model", show=False),
        *SHARE_BINDINGS,
        Binding("L", "toggle_model", "LLM off/on", id="app.model_off", show=False),
    ]

    def __init__(self, settings) -> None:
        super().__init__()
        self.core: Explorer | None = None  # the explorer core, once the first prompt is read
        self.sampler_keys = SamplerActions(self)
        self.constraint_keys = ConstraintActions(self)
        self.views = ViewActions(self, settings.attribution.baseline)
        self.switcher = ModelSwitcher(self)
        self.compare_keys = CompareActions(self)
        self.drawing = Drawing(self)
        self.share = ShareActions(self)

    def compose(self) -> ComposeResult:
        yield HeaderLine(id="header")
        yield MainView(id="main")
        yield BusyBar(id="busy")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(BusyBar).display = False

    def open(self, message: Loaded) -> None:
        """The first prompt is read: build the core on the loaded backend and draw."""
        first = Prompt.new(message.ids, message.messages, original=message.original,
                           origins=message.origins)
        # Attributions run in the background, so a key that needs the model goes first.
        self.core = Explorer(message.backend, self.settings.sampling, start_job=self.start_job,
                             notify=self.notify, lane_note=self.drawing.lane_note,
                             on_press=self._on_press, background=is_background)
        resume = getattr(self.app, "resume_state", None)
        if resume is not None:  # --resume, or the start screen's line
            self.share.resume(resume)
        else:
            self.core.open(PromptBook([first]))
        self.share.start_keeping()
        self.app.refresh_bindings()
        self.redraw()
        self.compare_keys.load_b(getattr(self.app, "compare_settings", None))  # --compare...

    # -- public surface (tests and scripts read these) ------------------------------------
    @property
    def settings(self):
        return self.app.settings  # the app's: a model switch replaces them there

    @property
    def engine(self):
        """The backend (the core's: a model switch swaps it there)."""
        return None if self.core is None else self.core.backend

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
        return self.query_one(NextTokenTable)

    @property
    def main_view(self) -> MainView:
        return self.query_one(MainView)

    @property
    def busy(self) -> bool:
        return self.lane is not None and self.lane.busy

    @property
    def capabilities(self) -> Capabilities:
        return self.engine.capabilities if self.engine is not None else Capabilities()

    @property
    def look(self) -> Look:
        return self.views.look()

    # The state the parts keep, read where tests and scripts look for it.
    colour = property(lambda self: self.views.colour)
    layer_view = property(lambda self: self.views.layer_view)
    attribution = property(lambda self: self.views.attribution)
    sampler = property(lambda self: None if self.core is None else self.core.sampler)
    stop_rule = property(lambda self: self.sampler_keys.stop_rule)
    autoplaying = property(lambda self: self.core is not None and self.core.autoplay_run is not None)
    can_sample = property(lambda self: self.core is not None and self.core.can_sample)
    samples_on_server = property(lambda self: self.core is not None and self.core.samples_on_server)
    tracked_ids = property(lambda self: [] if self.core is None else self.core.tracked_ids)
    constraint = property(lambda self: None if self.core is None else self.core.constraint)
    switching = property(lambda self: self.switcher.switching)

    def sampler_drawing(self) -> dict:
        return self.sampler_keys.drawing()

    def unpin(self, token_id: int) -> None:
        self.sampler_keys.unpin(token_id)

    def switch_model(self, name: str | None) -> None:
        self.switcher.switch_model(name)

    # -- key actions: each calls one part -------------------------------------------------
    def check_action(self, action: str, parameters) -> bool | None:
        return self.core is not None  # until a prompt is on screen no key works here

    def action_book(self, press: str) -> None:
        """Every key that edits or moves in the prompt book goes through the lane, in order.
        → at the position cursor branches there instead of appending."""
        if press != "append" or not self.core.cursor.branch(self.table.cursor_row):
            self.core.press(press, row=self.table.cursor_row)
        self.redraw()

    def action_position(self, delta: int) -> None:
        """[ / ] (shift+← / shift+→): the position cursor a token back or forward; the
        table cursor rests on the token that followed there."""
        self.core.cursor.move(delta)
        self._table_on_token()

    def on_prompt_view_clicked(self, message) -> None:
        """A click on a prompt token puts the position cursor on it."""
        self.core.cursor.put(message.index)
        self._table_on_token()

    def _table_on_token(self) -> None:
        table = self.core.cursor.table()
        self.redraw()
        if table is not None:
            self.table.move_cursor(row=table.token_row)

    def action_cycle_colour(self) -> None: self.views.cycle_colour()
    def action_cycle_layer_view(self) -> None: self.views.cycle_layer_view()
    def action_cycle_attribution(self) -> None: self.views.cycle_attribution()
    def action_cycle_baseline(self) -> None: self.views.cycle_baseline()
    def action_cancel_attribution(self) -> None: self.views.cancel_attribution()
    def action_grow_tree(self) -> None: self.views.grow_tree()
    def action_sample(self) -> None: self.sampler_keys.sample()
    def action_autoplay(self) -> None: self.sampler_keys.autoplay()
    def action_force_text(self) -> None: self.sampler_keys.force_text()
    def action_sampler_panel(self) -> None: self.sampler_keys.sampler_panel()
    def action_pin(self) -> None: self.sampler_keys.pin()
    def action_pin_text(self) -> None: self.sampler_keys.pin_text()
    def action_constraint_panel(self) -> None: self.constraint_keys.panel()
    def action_constraint_list(self) -> None: self.constraint_keys.toggle_list()
    def action_switch_model(self) -> None: self.switcher.pick()
    def action_toggle_plot(self) -> None: self.share.toggle_plot()
    def action_write_report(self) -> None: self.share.write_report()
    def action_toggle_model(self) -> None: self.core.toggle_model(); self.redraw()
    def action_compare_branches(self) -> None: self.compare_keys.branches()
    def action_compare_models(self) -> None: self.compare_keys.models()

    def on_second_model_loaded(self, message: SecondModelLoaded) -> None:
        self.compare_keys.loaded(message)

    def on_tracked_panel_unpin(self, message) -> None:
        self.sampler_keys.unpin(message.token_id)

    def on_line_table_cursor_moved(self, event) -> None:
        self.views.cursor_moved()

    def commands(self):
        """Command-palette entries (the app lists them once a prompt is shown)."""
        for press, title, help_text in PALETTE:
            yield SystemCommand(title, help_text, partial(self.action_book, press))
        yield from self.views.commands()
        yield from self.sampler_keys.commands()
        yield from self.constraint_keys.commands()
        yield from self.switcher.commands()
        yield from self.share.commands()
        yield from self.compare_keys.commands()

    # -- the lane's jobs --------------------------------------------------------------------
    def start_job(self, job) -> None:
        self.run_worker(partial(jobs.run_job, self.post_message, self.engine, job),
                        thread=True, exit_on_error=False, group="model", name=job.kind)

    def on_job_progress(self, message: JobProgress) -> None:
        self.drawing.job_progress(message)

    def on_chain_progress(self, message: ChainProgress) -> None:
        self.lane.advance(message.job, message.ids, message.records, message.views)
        self.redraw()

    def on_job_done(self, message: JobDone) -> None:
        running = self.lane.running
        error = message.error
        if error is not None and not isinstance(error, Cancelled) and running is not None \
                and running.id == message.job:
            if self.lane.shown is None:  # the first prompt never arrived: a failed start
                self.app.fail_start(startup.describe(error))
            else:
                self.notify(startup.describe(error), title="Model", severity="error", timeout=10)
            if running.kind is JobKind.VIEWS:
                self.views.drop_failed_view()  # without its data the view cannot be drawn
            self.stop_autoplay(None)
        self.lane.finish(message.job, message.result, error)
        self.redraw()
        self.autoplay_tick()
        self.switcher.swap_when_idle()  # a model switch waits for the running job to stop

    def on_switch_progress(self, message: SwitchProgress) -> None:
        self.switcher.progress(message)

    def on_switch_done(self, message: SwitchDone) -> None:
        self.switcher.done(message)

    def autoplay_tick(self) -> None:
        """Autoplay's next press, or a timer for the step delay still to wait."""
        if self.core is None or not self.app.screen_stack:  # (a timer after shutdown)
            return
        wait = self.core.autoplay_tick()
        if wait is not None:
            self.set_timer(wait, self.autoplay_tick)
        self.redraw()

    def stop_autoplay(self, reason: str | None) -> None:
        if self.core is not None:
            self.core.stop_autoplay(reason)

    def _on_press(self, name: str) -> None:
        if name == "save":
            self.views.save()

    # -- drawing (explorer.ui.drawing) ------------------------------------------------------
    def redraw(self) -> None:
        """Tell the lane what the look needs, then draw what it holds."""
        self.drawing.after_lane()
