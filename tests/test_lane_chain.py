"""A held key's appends chained inside one job (explorer.session.chain) on the lane alone:
no Textual, no threads. The test plays the worker: it takes the presses handed to the
running job one step at a time, reports (or not) the state reached, and finishes the job
when it likes, so every ordering of presses, steps, reports and results can be tried.
Every run is checked against the book the same presses make one by one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_lane import Harness, reference_book

from explorer.backend import PromptTooLongError
from explorer.session import Synced
from explorer.session.chain import AppendChain, run_chain
from explorer.session.lane import BOOK_PRESSES


class ChainHarness(Harness):
    """The harness's worker also appends the presses a sync job's chain was handed."""

    def __init__(self, ids=(0, 4, 5), **lane_kwargs):
        self.reached: dict[int, tuple] = {}  # job id -> (ids, records) the worker is at
        super().__init__(ids, **lane_kwargs)

    def _at(self, job):
        if job.id not in self.reached:  # the job's own sync, before any chained step
            self.reached[job.id] = (job.ids, self.backend.sync(job.key, job.ids))
        return self.reached[job.id]

    def step(self, report=True) -> bool:
        """The worker appends the next press it holds (one one-token sync); False: none."""
        job = self.lane.running
        if job is None or job.chain is None or job.cancelled():
            return False
        ids, records = self._at(job)
        row = job.chain.take()
        if row is None:
            return False
        top = records[-1].top
        ids = ids + (top[min(row, len(top) - 1)].token_id,)
        self.reached[job.id] = (ids, self.backend.sync(job.key, ids))
        if report:
            self.lane.advance(job.id, *self.reached[job.id], {})
        return True

    def run(self, *, result_if_cancelled=True, error=None):
        job = self.lane.running
        if job.chain is None or error is not None or (job.cancelled() and not result_if_cancelled):
            return super().run(result_if_cancelled=result_if_cancelled, error=error)
        for old in job.forget:
            self.backend.forget(old)
        ids, records = self._at(job)
        self.lane.finish(job.id, Synced(records, {}, ids))


def ready(**kwargs) -> ChainHarness:
    h = ChainHarness(**kwargs)
    h.run()
    return h


def test_held_appends_ride_one_job_and_make_the_same_tokens():
    h = ready()
    started = h.lane.jobs_started
    for row in (0, 2, 1, 0, 3):
        h.lane.press("append", row=row)
    assert h.lane.jobs_started == started + 1 and h.lane.pending == 4  # handed, not applied
    assert len(h.lane.book.current.ids) == 4
    while h.step():
        pass
    assert len(h.lane.book.current.ids) == 8 and h.lane.shown == h.lane.target
    h.drain()
    assert h.lane.jobs_started == started + 1 and h.lane.is_idle and h.lane.pending == 0
    expected = reference_book((0, 4, 5), [("append", r) for r in (0, 2, 1, 0, 3)], h.backend)
    assert h.lane.book.current.ids == expected.current.ids
    assert h.lane.records == h.backend.sync("check", expected.current.ids)


def test_tokens_reach_the_book_only_when_reported_and_in_order():
    h = ready()
    for _ in range(4):
        h.lane.press("append")
    h.step(report=False)
    h.step(report=False)
    assert len(h.lane.book.current.ids) == 4  # the worker is ahead of what it reported
    h.step(report=True)
    assert len(h.lane.book.current.ids) == 7 and h.lane.pending == 0
    h.drain()
    assert h.lane.book.current.ids == reference_book((0, 4, 5), [("append", 0)] * 4, h.backend).current.ids


def test_another_press_waits_for_the_held_tokens_and_seals_the_chain():
    h = ready()
    for _ in range(3):
        h.lane.press("append")
    h.lane.press("pop")
    h.lane.press("append", row=1)  # after the pop: not handed to the sealed chain
    assert len(h.lane.book.current.ids) == 4 and h.lane.pending == 4
    while h.step():
        pass
    # The three appends' tokens arrived, then the pop applied at once (as a pop does).
    assert len(h.lane.book.current.ids) == 5 and h.lane.pending == 1
    h.drain()
    presses = [("append", 0)] * 3 + [("pop", 0), ("append", 1)]
    assert h.lane.book.current.ids == reference_book((0, 4, 5), presses, h.backend).current.ids


def test_presses_not_started_go_back_to_the_queue_when_the_job_ends():
    h = ready()
    for _ in range(5):
        h.lane.press("append")
    h.step()
    h.run()  # the job ends (its worker stopped) with three presses it never took
    # The first of them is applied (a new job), the next two handed to that job's chain.
    assert len(h.lane.book.current.ids) == 6 and h.lane.running.chain.held == h.lane.pending == 2
    h.drain()
    assert h.lane.book.current.ids == reference_book((0, 4, 5), [("append", 0)] * 5, h.backend).current.ids


def test_a_view_wanted_mid_chain_fetches_views_between_the_rest():
    h = ready()
    for _ in range(4):
        h.lane.press("append")
    h.step()
    h.lane.want({"influence"})  # the two presses not started are queued again
    assert h.lane.pending == 2 and not h.step()
    h.drain()
    assert h.lane.book.current.ids == reference_book((0, 4, 5), [("append", 0)] * 4, h.backend).current.ids
    assert h.lane.views == {"influence": h.lane.shown[1]}
    h.lane.press("append")
    assert h.lane.running.chain is None  # views beyond the ride-along ones: no chain


def test_a_failed_step_keeps_the_tokens_before_it_and_drops_the_rest():
    h = ready()
    for _ in range(4):
        h.lane.press("append")
    h.step()
    h.run(error=PromptTooLongError("too long"))
    assert len(h.lane.book.current.ids) == 5 and h.lane.shown == h.lane.target
    assert h.lane.pending == 0 and h.lane.is_idle


def test_run_chain_reports_at_most_every_interval_and_returns_a_press_it_could_not_append():
    chain = AppendChain()
    for row in (0, 1, 0):
        assert chain.offer(row)
    h = ready()
    start = h.lane.records
    reports = []

    def step(ids):
        if len(ids) == 5:  # the second press
            raise PromptTooLongError("too long")
        return h.backend.sync("worker", ids)

    try:
        run_chain(chain, (0, 4, 5), start, step, lambda ids, recs: reports.append(ids), every=3600)
    except PromptTooLongError:
        pass
    assert reports == []  # the first step's report waits an hour; the failed one none
    assert chain.drop() == [1, 0] and not chain.offer(0)  # the failed press went back


def test_a_sealed_chain_still_hands_over_what_it_holds():
    chain = AppendChain()
    chain.offer(2)
    chain.seal()
    assert not chain.offer(1) and chain.take() == 2 and chain.take() is None and chain.held == 1


# -- property: any interleaving, worker steps and reports included, settles on the book ----
PRESS = st.tuples(st.sampled_from(sorted(BOOK_PRESSES | {"save"}) + ["append"] * 4), st.integers(0, 7))
STEP = st.one_of(
    PRESS.map(lambda p: ("press",) + p),
    st.sampled_from([("run", True), ("run", False), ("step", True), ("step", False),
                     ("want", frozenset()), ("want", frozenset({"influence"})),
                     ("want", frozenset({"logits"}))]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(STEP, max_size=60))
def test_any_interleaving_with_a_chain_settles_on_the_books_state(steps):
    h = ChainHarness()
    presses = []
    for step in steps:
        if step[0] == "press":
            presses.append(step[1:])
            h.lane.press(*step[1:])
        elif step[0] == "run" and h.lane.running is not None:
            h.run(result_if_cancelled=step[1])
        elif step[0] == "step":
            h.step(report=step[1])
        elif step[0] == "want":
            h.lane.want(step[1])
        assert h.lane.running is None or h.lane.running is h.started[-1]  # one job at a time
        assert h.lane.pending >= 0
    h.lane.want(frozenset())
    h.drain()
    lane = h.lane
    assert lane.is_idle and lane.pending == 0 and lane.shown == lane.target
    assert lane.records == h.backend.sync("check", lane.book.current.ids)
    expected = reference_book((0, 4, 5), presses, h.backend)
    assert [(p.ids, p.original) for p in lane.book] == [(p.ids, p.original) for p in expected]
    assert lane.book.index == expected.index
