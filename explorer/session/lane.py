"""The key-press lane: presses applied in order, one model job at a time. No Textual.

The prompt book is the truth; `shown` is the state whose records the screen holds. A job
only brings the screen up to the book (a sync) or fetches view arrays for what is shown.

Rules, each one there because an ordering of presses and results once broke it:
- One job at a time, *really*: a job ends when its runner calls `finish(job.id, ...)`,
  which it does whatever happened (result, error, cancelled). The lane never relies on a
  framework telling it that a job it cancelled has stopped (Textual sends no CANCELLED
  state change for a thread worker cancelled before it started; that froze the app).
- Superseding is a request: `Job.cancel()` sets a flag the job's model work polls. The
  next job starts only after the cancelled one has finished, so two jobs never share the
  backend.
- A result is always true for its own target, so a finished sync is shown even when the
  user has moved on; the lane then starts the sync the book needs now.
- An append takes the candidate at the cursor row it was pressed on, from the table of the
  prompt it follows: it waits until that table is on screen. A save waits the same way, so
  that it writes the records of exactly the ids it saves (the per-position JSONL). An
  `Edit` registered with `needs` (e.g. sampling, which needs the kept logits row) waits
  the same way until those views are fetched too. Every other press applies at once, even
  while a job runs.
- A pop (or a reset to a prefix) needs no model work: the records of a prefix are the
  prefix of the records, and the views of recently shown ids are kept, so the lane shows
  it at once, with no job, when the shown records and kept views cover it. The backend
  catches up with the book in the next job (a sync or a views job brings it to the job's
  ids first: for a prefix, a crop).
- One draw per state change: views that cost no model work (`RIDE_ALONG`: the kept logits
  row) are fetched by the sync job itself, so the records and their p_final arrive
  together.
- A held key does not wait for each step's round trip: an append that would wait for a
  running sync job is handed to it (explorer.session.chain) when the look wants no views
  beyond the ride-along ones, and the worker appends its token right after the step
  before. Its tokens enter the book, in order, as the worker reports them (`advance`);
  until they have, every other press waits (it came after them), and a press of another
  kind seals the chain. A wanted view beyond the ride-along ones gives the presses the
  worker has not started back to the queue, so that views are fetched between them.
- A background view (`background(name)`: an attribution) never holds up a press or
  another view: a press that waits or a wanted view of another kind cancels it (the
  backend keeps what it finished), goes first, and it is asked for again after.
Results and failures are taken in explorer.session.results.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from explorer.backend.errors import Cancelled
from explorer.backend.types import TokenRecord
from explorer.lru import LRU
from explorer.session.book import LastPromptError, PromptBook
from explorer.session.chain import AppendChain
from explorer.session.job import Edit, Job, Press, Synced, Target
from explorer.session.presses import BOOK_ACTIONS, BOOK_PRESSES
from explorer.session.results import accept, recover
from explorer.session.views import JobKind, View

__all__ = ["BOOK_PRESSES", "Edit", "Job", "Lane", "Press", "Synced", "Target"]

# Presses that wait until the screen shows the book's prompt (they read its records).
WAIT_FOR_SCREEN = frozenset({"append", "save", "branch"})
# Wanted views a sync job fetches with the records (no model work: the kept logits row).
RIDE_ALONG = frozenset({View.LOGITS})
KEPT_VIEWS = 16  # shown id sequences whose views are kept for pops (600 KB rows at 152k)


class Lane:
    """Queue of presses plus the one running job.

    start(job): begin the job's work somewhere (a thread); it must end with finish().
    notify(text, severity): one sentence for the user ("information" or "warning").
    on_press(name): presses that are not book edits (e.g. "save"), in key-press order.
    """

    def __init__(
        self,
        book: PromptBook,
        *,
        start: Callable[[Job], None],
        notify: Callable[[str, str], None] = lambda text, severity: None,
        on_press: Callable[[str], None] = lambda name: None,
        edits: Mapping[str, Edit] | None = None,
        tracked: Sequence[int] = (),
        background: Callable[[str], bool] = lambda name: False,
    ) -> None:
        self.book = book
        self._background = background
        self._start, self._notify, self._on_press = start, notify, on_press
        self._edits: dict[str, Edit] = dict(edits or {})
        self.tracked: tuple[int, ...] = tuple(int(t) for t in tracked)
        self.sampling: Any = None
        self._queue: deque[Press] = deque()
        self._ids = itertools.count(1)
        self._forget: list[int] = []
        self._wanted: frozenset[str] = frozenset()
        self._failed_views: set[str] = set()
        self._failed_target: Target | None = None
        self.running: Job | None = None
        self.shown: Target | None = None
        self.records: tuple[TokenRecord, ...] = ()
        self.views: dict[str, Any] = {}  # view arrays for the shown ids only
        # ids -> (tracked set, views) of recently shown ids, for pops (bounded).
        self._kept: LRU[tuple[int, ...], tuple[tuple[int, ...], dict[str, Any]]] = LRU(KEPT_VIEWS)
        self.chaining = True  # False: one job per append press (benchmarks compare the two)
        self.jobs_started = 0
        self.most_pending = 0  # high-water mark of the queue, for tests and diagnostics
        self.preempted = 0  # background jobs cancelled so that a press or view went first
        # "LLM off": presses that need no model (pop, force, fork, ...) apply to the book,
        # no job starts, and a press that needs the table is refused; on again, one sync.
        self.model_off = False
        # A backend swap is waiting for the running job to stop (stop_for_swap): no job
        # starts any more; a new lane on the new backend takes over.
        self.stopped_for_swap = False

    # -- reading -------------------------------------------------------------------------
    @property
    def target(self) -> Target:
        """What the screen should show: the book's current prompt."""
        return (self.book.current.key, self.book.current.ids)

    @property
    def pending(self) -> int:
        """Presses not yet applied: queued, or handed to the running job's chain."""
        return len(self._queue) + self._held()

    def _held(self) -> int:
        job = self.running
        return 0 if job is None or job.chain is None else job.chain.held

    @property
    def busy(self) -> bool:
        return self.running is not None

    @property
    def in_sync(self) -> bool:
        return self.shown == self.target

    @property
    def missing_views(self) -> frozenset[str]:
        return frozenset(self._wanted - self.views.keys() - self._failed_views)

    @property
    def failed_views(self) -> frozenset[str]:
        """Wanted views whose job failed for what is shown (asked again only on request)."""
        return frozenset(self._failed_views & self._wanted)

    @property
    def is_idle(self) -> bool:
        """Nothing queued or running, and nothing left to do for the book's state."""
        if self.running is not None or self._queue:
            return False
        if self.model_off:
            return True  # nothing will run until the model is on again
        if not self.in_sync:
            return self._failed_target == self.target  # failed; waits for the next press
        return not self.missing_views

    # -- input ---------------------------------------------------------------------------
    def press(self, name: str, row: int = 0, arg: Any = None) -> None:
        self._queue.append(Press(name, row, arg))
        self.most_pending = max(self.most_pending, self.pending)
        self.pump()

    def want(self, views: Collection[str]) -> None:
        """The views the screen needs for whatever it shows (e.g. {"influence"})."""
        self._wanted = frozenset(views)
        job = self.running
        if job is not None and job.chain is not None and not self._wanted <= RIDE_ALONG:
            self._requeue(job.chain.drop())  # each needs its views again: one job apiece
        self.pump()

    def advance(self, job_id: int, ids: Sequence[int], records: Sequence[TokenRecord],
                views: Mapping[str, Any]) -> None:
        """The running sync job's worker reached `ids`: its own ids plus the tokens of
        presses handed to its chain. They enter the book and the screen."""
        job = self.running
        if job is None or job.id != job_id or job.chain is None:
            return
        if self._take_chained(job, tuple(ids)):
            self._show(job.target, tuple(records), dict(views))
            self._failed_target = None
        self.pump()

    def track(self, token_ids: tuple[int, ...]) -> None:
        """Follow these token ids in the "tracked" view (fetched again for the new set)."""
        self.tracked = tuple(int(t) for t in token_ids)
        self.refetch(View.TRACKED)

    def use_sampling(self, settings: Any) -> None:
        """Draw with these sampler settings in the "draw" view (fetched again on a change)."""
        if settings != self.sampling:
            self.sampling = settings
            self.refetch(View.DRAW)

    def refetch(self, view: str) -> None:
        """Fetch `view` again (its settings changed, or it failed and the user asks again)."""
        self.views.pop(view, None)
        for _, kept in self._kept.values():  # and not from a pop's kept views either
            kept.pop(view, None)
        self._failed_views.discard(view)
        if self.running is not None and view in self.running.views:
            self.running.cancel()  # its result would be for what it was asked with
        self.pump()

    def forget_later(self, key: int) -> None:
        """The backend forgets prompt `key` in the next sync job (a removed prompt)."""
        self._forget.append(key)

    def notify(self, text: str, severity: str = "information") -> None:
        self._notify(text, severity)

    def finish(self, job_id: int, result: Any = None, error: BaseException | None = None) -> None:
        """The runner's report that job `job_id` has stopped. Returns nothing; read state."""
        job = self.running
        if job is None or job.id != job_id:
            return  # not the running job: a stale report
        self.running = None
        if job.chain is not None:
            self._requeue(job.chain.drop())  # handed over but not appended: queued again
        if error is None and result is not None:
            accept(self, job, result)
        elif error is not None and not isinstance(error, Cancelled):
            recover(self, job)
        self.pump()

    # -- the pump ------------------------------------------------------------------------
    def pump(self) -> None:
        while self._queue:
            self._follow_prefix()
            if self._chained(self._queue[0]):
                self._queue.popleft()
                continue
            if self.model_off and self._needs_model(self._queue[0]):
                press = self._queue.popleft()
                self._notify(f"The model is off: {press.name} needs it; turn it on first.", "warning")
                continue
            if self._waits(self._queue[0]):
                break
            self._apply(self._queue.popleft())
        self._follow_prefix()
        if self.model_off or self.stopped_for_swap:
            return  # the book moves on; the screen catches up once the model is on
        if self.running is not None:
            # Superseded (a views job serves what is shown, so the same test applies).
            if self.running.target != self.target and not self.running.cancelled():
                self.running.cancel()
            # A views job fetching something the screen no longer wants (the cursor moved
            # on while an attribution ran) stops too; the pump then asks for what is wanted.
            elif (self.running.kind is JobKind.VIEWS and not self.running.views <= self._wanted
                  and not self.running.cancelled()):
                self.running.cancel()
            # A background view yields to a press waiting behind it or another view.
            elif self._yields(self.running) and not self.running.cancelled() and (
                    self._queue or any(not self._background(v) for v in self.missing_views)):
                self.running.cancel()
                self.preempted += 1
            return
        if not self.in_sync:
            if self._failed_target != self.target:
                key, ids = self.target
                forget, self._forget = tuple(self._forget), []
                chain = AppendChain() if self.chaining and self._wanted <= RIDE_ALONG else None
                self._begin(Job(next(self._ids), JobKind.SYNC, key, ids, forget=forget,
                                views=self._wanted & RIDE_ALONG, chain=chain))
                while self._queue and self._chained(self._queue[0]):  # appends behind it
                    self._queue.popleft()
            return
        missing = self.missing_views
        quick = frozenset(v for v in missing if not self._background(v))
        missing = quick or missing  # the background views after the others, on their own
        if missing and (not self._queue or self._waits(self._queue[0])):
            key, ids = self.shown
            top = tuple(c.token_id for c in self.records[-1].top)
            prompt = next((p for p in self.book if p.key == key), None)
            self._begin(Job(next(self._ids), JobKind.VIEWS, key, ids, views=missing, candidates=top,
                            tracked=self.tracked, sampling=self.sampling,
                            prompt_len=len(ids) if prompt is None else len(prompt.original)))

    def _follow_prefix(self) -> None:
        """Show a prefix of the shown ids (a pop) at once, when the shown records and the
        kept views cover it; otherwise a sync job will."""
        if self.shown is None or self.in_sync:
            return
        key, ids = self.target
        n = len(ids)
        if key != self.shown[0] or not 0 < n < len(self.shown[1]) or self.shown[1][:n] != ids:
            return
        if not self.records[n - 1].top:  # a server's record built without its table
            return
        tracked, views = self._kept.peek(ids, (self.tracked, {}))
        if tracked != self.tracked:
            views = {k: v for k, v in views.items() if k != View.TRACKED}
        if self._wanted - views.keys():
            return
        self._show(self.target, self.records[:n], dict(views))
        self._failed_target = None

    def _show(self, target: Target, records: tuple[TokenRecord, ...], views: dict[str, Any]) -> None:
        """Put new records (and their views) on screen, keeping the old ones' views."""
        if self.shown is not None and self.views:
            self._kept.put(self.shown[1], (self.tracked, self.views))
        self._kept.pop(target[1], None)
        self.shown, self.records, self.views = target, records, views
        self._failed_views = set()

    def _chained(self, press: Press) -> bool:
        """Hand an append to the running sync job's chain; another press seals it."""
        job = self.running
        if job is None or job.chain is None:
            return False
        if press.name != "append" or job.cancelled() or job.target != self.target:
            job.chain.seal()
            return False
        return job.chain.offer(press.row)

    def _take_chained(self, job: Job, ids: tuple[int, ...]) -> bool:
        """Put the tokens the chain appended past job.ids into the book, in order. False
        when there are none, or the book is no longer where the job left it."""
        n = len(job.ids)
        if len(ids) <= n or ids[:n] != job.ids:
            return False
        if self.book.current.key != job.key or self.book.current.ids != job.ids:
            return False  # (every press waits for held ones; a safeguard: the job is stale)
        for token in ids[n:]:
            self.book.append(token)
        job.chain.reported += len(ids) - n
        job.ids = ids
        return True

    def _requeue(self, rows: list[int]) -> None:
        self._queue.extendleft(Press("append", row) for row in reversed(rows))

    def _yields(self, job: Job) -> bool:
        return job.kind is JobKind.VIEWS and bool(job.views) and all(map(self._background, job.views))

    def _waits(self, press: Press) -> bool:
        """Whether the press at the head of the queue must wait for the screen."""
        if self._held():
            return True  # the tokens of presses before it are still being appended
        edit = self._edits.get(press.name)
        if press.name not in WAIT_FOR_SCREEN and (edit is None or not edit.needs):
            return False
        if self.running is not None or not self.in_sync:
            return True
        # Needed views still coming (a wanted view that failed does not hold the queue).
        return edit is not None and bool(edit.needs & self.missing_views)

    def _needs_model(self, press: Press) -> bool:
        edit = self._edits.get(press.name)
        return press.name in WAIT_FOR_SCREEN or (edit is not None and bool(edit.needs))

    def stop_for_swap(self) -> bool:
        """The backend is about to be swapped: start no job from now on and cancel the
        running one. (Cancelling alone let the pump restart a wanted view, an attribution,
        the moment the cancelled job reported, and the swap cancelled that one too: for
        ever.) Whether a job still runs; its finish comes later."""
        self.stopped_for_swap = True
        if self.running is not None and not self.running.cancelled():
            self.running.cancel()
        return self.running is not None

    def set_model_off(self, off: bool) -> None:
        """Turn model work off (True) or back on: then one job brings the screen up to
        whatever the book holds now."""
        self.model_off = bool(off)
        self.pump()

    def _begin(self, job: Job) -> None:
        self.running = job
        self.jobs_started += 1
        self._start(job)

    def _apply(self, press: Press) -> None:
        try:
            if press.name in BOOK_ACTIONS:
                BOOK_ACTIONS[press.name](self, press)
            elif press.name in self._edits:
                self._edits[press.name].apply(self, press)
            else:
                self._on_press(press.name)
        except LastPromptError as exc:
            self._notify(str(exc), "warning")
