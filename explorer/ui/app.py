"""TokenExplorerApp: the prompt, its colour layers, and the next-token table.

Model work happens only in thread workers, one job at a time. Key presses that change a
prompt go into a FIFO (`_pending`) applied in order by `_pump()` on the app thread; an append
waits until the table on screen belongs to the prompt as it is now, so each press takes the
candidate under the cursor of the table it follows. The prompt book is the truth; a job only
brings the screen up to it (and is cancelled when the book moves somewhere else).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.worker import Worker, WorkerState, get_current_worker
from textual.widgets import Footer

from explorer.backend import BackendError, Cancelled, TokenRecord, open_backend
from explorer.config import Settings
from explorer.session import LastPromptError, PromptBook, PromptFileError, read_start_prompt, save_prompt
from explorer.ui.chrome import BusyBar, HeaderLine, Legend, LoadingPanel
from explorer.ui.heatmap import LayerHeatmap
from explorer.ui.messages import Loaded, LoadProgress, PrefillProgress, Synced, ViewData
from explorer.ui.next_table import NextTokenTable
from explorer.ui.prompt_view import PromptView
from explorer.ui.views import ColourLayer, LayerView, layer_values


# Actions that edit the prompt book; they run in key-press order through the FIFO.
BOOK_ACTIONS = {"append", "pop", "previous_prompt", "next_prompt", "fork", "remove", "reset", "save"}
VIEW_CACHE_SIZE = 64


class _ArrayCache(OrderedDict):
    """Small LRU of numpy arrays keyed by token-id tuples (view data depends on ids only)."""

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > VIEW_CACHE_SIZE:
            self.popitem(last=False)


class TokenExplorerApp(App):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "Token Explorer"

    BINDINGS = [
        Binding("right,l", "append", "Append", id="prompt.append", key_display="→/l"),
        Binding("left,h", "pop", "Pop", id="prompt.pop", key_display="←/h"),
        Binding("w", "previous_prompt", "Prev", id="prompt.previous"),
        Binding("s", "next_prompt", "Next", id="prompt.next"),
        Binding("d", "fork", "Fork", id="prompt.fork"),
        Binding("a", "remove", "Remove", id="prompt.remove"),
        Binding("x", "save", "Save", id="prompt.save"),
        Binding("ctrl+r", "reset", "Reset", id="prompt.reset"),
        Binding("e", "cycle_colour", "Colour", id="view.colour"),
        Binding("p", "cycle_layer_view", "Layers", id="view.layers"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        input_path: Path | None = None,
        engine=None,
    ) -> None:
        """`engine`: an already loaded Engine (tests share one); otherwise one is loaded
        from settings.model in a worker while the loading panel shows progress."""
        super().__init__()
        self.settings = settings or Settings()
        self.input_path = input_path
        self.engine = engine
        self.book: PromptBook | None = None
        self.colour = ColourLayer.NONE
        self.layer_view = LayerView.NONE
        self.records: tuple[TokenRecord, ...] = ()
        self.shown: tuple[int, tuple[int, ...]] | None = None  # (key, ids) of `records`
        self._pending: deque[str] = deque()
        self._job = 0
        self._job_worker: Worker | None = None
        self._job_target: tuple[int, tuple[int, ...]] | None = None  # (key, ids) it works for
        self._to_forget: list[int] = []
        self.start_error: str | None = None  # one sentence when the model could not load
        self._influence = _ArrayCache()
        self._prompt_lens = _ArrayCache()
        self._candidate_lens = _ArrayCache()

    # -- layout ------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield HeaderLine(id="header")
        yield LoadingPanel(id="loading")
        with Vertical(id="main"):
            with VerticalScroll(id="prompt-scroll", can_focus=False):
                yield PromptView(id="prompt")
            yield Legend(id="legend")
            yield LayerHeatmap(id="heatmap")
            yield NextTokenTable(id="table")
        yield BusyBar(id="busy")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#main").display = False
        self.query_one(BusyBar).display = False
        self.query_one(LayerHeatmap).display = False
        self.query_one("#prompt-scroll").can_focus = False
        self._show_header()
        self._load()

    @property
    def layer_prob(self) -> bool:
        return self.settings.layer_prob

    @property
    def table(self) -> NextTokenTable:
        return self.query_one(NextTokenTable)

    @property
    def busy(self) -> bool:
        return self._job_worker is not None

    @property
    def start_failed(self) -> bool:
        return self.start_error is not None

    def action_quit(self) -> None:
        # A start that failed is a failed run for scripts too; cli prints the reason again.
        self.exit(return_code=1 if self.start_failed else 0)

    @property
    def is_idle(self) -> bool:
        """Loaded, nothing queued or computing, and the screen shows the current prompt."""
        return (
            self.book is not None
            and not self.busy
            and not self._pending
            and self._in_sync()
            and not any(self._views_missing())
        )

    def check_action(self, action: str, parameters) -> bool | None:
        # Until a prompt is on screen (loading, or the model failed) only quitting works.
        if self.book is None and (action in BOOK_ACTIONS or action.startswith("cycle_")):
            return False
        return True

    # -- start-up ----------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, name="load", group="load")
    def _load(self) -> None:
        def say(text: str) -> None:
            self.post_message(LoadProgress(text))

        engine = self.engine
        if engine is None:
            s = self.settings
            say(f"Loading model {s.model.name}…")
            engine = open_backend(s, progress=say)
        say("Reading the prompt…")
        start = read_start_prompt(
            engine.encode,
            engine.info.name,
            engine.info.max_context,
            self.input_path,
            self.settings.resolve(self.settings.prompts.default),
        )
        self.post_message(Loaded(engine, start.ids, start.errors, start.warnings))

    def on_load_progress(self, message: LoadProgress) -> None:
        self.query_one(LoadingPanel).say(message.text)

    def on_loaded(self, message: Loaded) -> None:
        self.engine = message.engine
        self.book = PromptBook([message.ids])
        for text in message.errors:
            self.notify(text, title="Input file", severity="error", timeout=10)
        for text in message.warnings:
            self.notify(text, title="Input file", severity="warning", timeout=10)
        self.query_one(LoadingPanel).say(f"Reading the prompt ({len(message.ids)} tokens)…")
        self.refresh_bindings()
        self._pump()

    # -- the lane: one model job at a time -----------------------------------------------
    def _in_sync(self) -> bool:
        return self.shown == (self.book.current.key, self.book.current.ids)

    def _pump(self) -> None:
        """Apply queued presses in order; start the one model job the state needs next.

        Presses that do not read the table (pop, switch, fork, remove, reset, save) apply at
        once, even while a job runs; an append waits until the table on screen belongs to the
        prompt as it is now. A running job whose target the user has left is cancelled.
        """
        if self.book is None:
            self._show_header()
            return
        while self._pending:
            if self._pending[0] == "append" and (self.busy or not self._in_sync()):
                break
            self._apply(self._pending.popleft())
        current = (self.book.current.key, self.book.current.ids)
        if self.busy:
            if self._job_target != current and not self._job_worker.is_cancelled:
                self._job_worker.cancel()  # superseded: its result would be for a state left
        elif not self._in_sync():
            self._start_sync()
        elif not self._pending:
            self._start_views_if_needed()
        self._show_header()

    def _apply(self, action: str) -> None:
        book = self.book
        try:
            if action == "append":
                candidate = self.table.selected()
                if candidate is not None:
                    book.append(candidate.token_id)
            elif action == "pop":
                book.pop()
            elif action == "previous_prompt":
                book.previous()
            elif action == "next_prompt":
                book.next()
            elif action == "fork":
                book.fork()
                self.notify(f"Forked: now on prompt {book.index + 1}/{len(book)}.", timeout=2)
            elif action == "remove":
                self._to_forget.append(book.remove().key)
            elif action == "reset":
                book.reset()
            elif action == "save":
                self._save()
        except LastPromptError as exc:
            self.notify(str(exc), severity="warning")

    def _save(self) -> None:
        ids = self.book.current.ids
        folder = self.settings.resolve(self.settings.prompts.save_dir)
        try:
            path = save_prompt(folder, self.engine.decode(ids), ids, self.engine.info.name)
        except PromptFileError as exc:
            self.notify(str(exc), title="Save", severity="error", timeout=10)
            return
        shown = path.relative_to(self.settings.resolve(".")) if path.is_relative_to(self.settings.resolve(".")) else path
        self.notify(f"Saved {shown} and {path.with_suffix('.json').name}.", title="Save")

    def _start_sync(self) -> None:
        self._job += 1
        prompt = self.book.current
        forget, self._to_forget = self._to_forget, []
        self._job_target = (prompt.key, prompt.ids)
        self._job_worker = self._sync(self._job, prompt.key, prompt.ids, forget)

    @work(thread=True, exit_on_error=False, name="sync", group="model")
    def _sync(self, job: int, key: int, ids: tuple[int, ...], forget: list[int]) -> None:
        worker = get_current_worker()
        for old in forget:
            self.engine.forget(old)
        records = self.engine.sync(
            key,
            ids,
            progress=lambda done, total: self.post_message(PrefillProgress(job, done, total)),
            cancelled=lambda: worker.is_cancelled,
        )
        if not worker.is_cancelled:
            self.post_message(Synced(job, key, ids, records))

    def on_prefill_progress(self, message: PrefillProgress) -> None:
        if message.job != self._job:
            return
        if self.shown is None:
            self.query_one(LoadingPanel).progress(message.done, message.total)
        else:
            label = f"Reading prompt {message.done}/{message.total} "
            self.query_one(BusyBar).progress(label, message.done, message.total)

    def on_synced(self, message: Synced) -> None:
        if message.job != self._job:
            return  # superseded
        self._job_worker = None
        first = self.shown is None
        self.records, self.shown = message.records, (message.key, message.ids)
        if first:
            self.query_one(LoadingPanel).display = False
            self.query_one("#main").display = True
            self.table.focus()
        self.query_one(BusyBar).done()
        self._render()
        self._pump()

    def _views_missing(self) -> tuple[bool, bool, bool]:
        ids = self.shown[1]
        lens = self.layer_view is not LayerView.NONE
        return (
            self.colour is ColourLayer.INFLUENCE and ids not in self._influence,
            lens and ids not in self._prompt_lens,
            lens and ids not in self._candidate_lens,
        )

    def _start_views_if_needed(self) -> None:
        missing = self._views_missing()
        if any(missing):
            self._job += 1
            key, ids = self.shown
            candidates = [c.token_id for c in self.records[-1].top]
            self._job_target = self.shown
            self._job_worker = self._fetch_views(self._job, key, ids, candidates, *missing)

    @work(thread=True, exit_on_error=False, name="views", group="model")
    def _fetch_views(self, job, key, ids, candidates, influence, prompt_lens, candidate_lens) -> None:
        engine = self.engine
        data = ViewData(job, ids)
        if influence:
            data.influence = engine.influence(key)
        if prompt_lens:
            data.prompt_lens = engine.prompt_layer_probs(key)
        if candidate_lens:
            data.candidate_lens = engine.layer_probs(key, candidates)
        if not get_current_worker().is_cancelled:
            self.post_message(data)

    def on_view_data(self, message: ViewData) -> None:
        if message.job != self._job:
            return
        self._job_worker = None
        for cache, value in (
            (self._influence, message.influence),
            (self._prompt_lens, message.prompt_lens),
            (self._candidate_lens, message.candidate_lens),
        ):
            if value is not None:
                cache.put(message.ids, value)
        self._render()
        self._pump()

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        """The one place where a failed or cancelled job is turned into something visible."""
        worker, state = event.worker, event.state
        if state is WorkerState.ERROR and not _is_cancellation(worker.error):
            error = worker.error
            text = str(error) or type(error).__name__
            if not _is_user_error(error):
                text = f"{type(error).__name__}: {text}"
            if worker.name == "load":
                self.start_error = text
                self.query_one(LoadingPanel).fail(text)
                self._show_header()
                self.notify(text, title="Could not start", severity="error", timeout=30)
                return
            self.notify(text, title="Model", severity="error", timeout=10)
            if worker is self._job_worker:
                self._recover(worker.name)
        if state in (WorkerState.ERROR, WorkerState.CANCELLED) and worker is self._job_worker:
            self._job_worker = None
            self._pump()

    def _recover(self, job_name: str) -> None:
        """A job failed: drop the presses queued behind it and go back to what is shown."""
        self._pending.clear()
        if job_name == "views":
            # Without its data the view cannot be drawn; turn it off rather than retry forever.
            self.colour = ColourLayer.NONE if self.colour is ColourLayer.INFLUENCE else self.colour
            self.layer_view = LayerView.NONE
            self._render()
            return
        if self.shown is None:
            return
        key, ids = self.shown
        for index, prompt in enumerate(self.book):
            if prompt.key == key:
                while self.book.index != index:
                    self.book.next()
                self.book.set_ids(ids)
                break

    # -- key actions --------------------------------------------------------------------
    def _enqueue(self, action: str) -> None:
        self._pending.append(action)
        self._pump()

    def action_append(self) -> None:
        self._enqueue("append")

    def action_pop(self) -> None:
        self._enqueue("pop")

    def action_previous_prompt(self) -> None:
        self._enqueue("previous_prompt")

    def action_next_prompt(self) -> None:
        self._enqueue("next_prompt")

    def action_fork(self) -> None:
        self._enqueue("fork")

    def action_remove(self) -> None:
        self._enqueue("remove")

    def action_reset(self) -> None:
        self._enqueue("reset")

    def action_save(self) -> None:
        self._enqueue("save")

    def action_cycle_colour(self) -> None:
        self.colour = self.colour.next()
        self._render()
        self._pump()

    def action_cycle_layer_view(self) -> None:
        if not self.layer_prob:
            self.notify(
                "Layer views need the logit lens: start with --layer_prob.",
                title="Layer views",
                severity="warning",
            )
            return
        self.layer_view = self.layer_view.next()
        self._render()
        self._pump()

    # -- drawing (no model work: stored records and cached arrays only) -----------------
    def _show_header(self) -> None:
        header = self.query_one(HeaderLine)
        if self.engine is None or self.book is None:
            name = self.settings.model.name
            header.loading(name, "could not start" if self.start_error else "loading…")
            return
        info = self.engine.info
        busy = ""
        if self._pending or self.busy:
            busy = f"computing ({len(self._pending)} queued)" if self._pending else "computing"
        header.show(
            model=info.name,
            device=info.device,
            dtype=info.dtype,
            prompt_index=self.book.index + 1,
            prompts=len(self.book),
            tokens=len(self.book.current.ids),
            layer=self.colour,
            view=self.layer_view if self.layer_prob else None,
            busy=busy,
        )

    def _colour_values(self) -> list[float | None] | None:
        if self.colour is ColourLayer.PROBABILITY:
            return [r.prob for r in self.records]
        if self.colour is ColourLayer.ENTROPY:
            return [r.entropy_norm for r in self.records]
        if self.colour is ColourLayer.INFLUENCE:
            influence = self._influence.get(self.shown[1])
            return None if influence is None else [float(v) for v in influence]
        return None

    def _render(self) -> None:
        if self.shown is None:
            return
        ids = self.shown[1]
        texts = [r.text for r in self.records]
        values = self._colour_values()
        pending_note = ""
        if self.colour is ColourLayer.INFLUENCE and values is None:
            pending_note = "computing influence…"
        self.query_one(PromptView).show(texts, values, self.colour.scale)
        scroll = self.query_one("#prompt-scroll", VerticalScroll)
        scroll.border_title = f"prompt · {len(ids)} tokens"
        scroll.scroll_end(animate=False)
        last = self.records[-1]
        # The entropy of the distribution the table shows (H / ln V, and in bits).
        self.table.border_title = (
            f"next token · entropy {last.next_entropy_norm:.2f} "
            f"({last.next_entropy / math.log(2):.2f} bits)"
        )
        view = self.layer_view if self.layer_prob else None
        self.query_one(Legend).show(self.colour, view, pending_note)

        lens_on = self.layer_view is not LayerView.NONE
        heatmap = self.query_one(LayerHeatmap)
        heatmap.display = lens_on
        strips = None
        if lens_on:
            prompt_lens = self._prompt_lens.get(ids)
            heatmap.show(
                None if prompt_lens is None else layer_values(prompt_lens, self.layer_view), texts
            )
            candidate_lens = self._candidate_lens.get(ids)
            if candidate_lens is not None:
                strips = layer_values(candidate_lens, self.layer_view)
        self.table.show(self.records[-1].top, strips, with_strip=lens_on)
        self._show_header()


def _is_cancellation(error: BaseException | None) -> bool:
    return isinstance(error, Cancelled)


def _is_user_error(error: BaseException | None) -> bool:
    return isinstance(error, (BackendError, PromptFileError, ValueError))
