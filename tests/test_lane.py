"""The key-press lane on its own: no Textual, no threads. The test decides when each job
finishes (and whether a cancelled one finishes with a result or with Cancelled), so every
ordering of presses, job starts, cancels and results can be tried."""

from __future__ import annotations

from fake_backend import TableBackend
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.backend import Cancelled, PromptTooLongError
from explorer.session import Lane, PromptBook
from explorer.session.lane import BOOK_PRESSES


class Harness:
    """A lane whose jobs wait in a list until the test runs them on the table backend."""

    def __init__(self, ids=(0, 4, 5), **lane_kwargs):
        self.backend = TableBackend()
        self.started = []
        self.notes = []
        self.lane = Lane(PromptBook([ids]), start=self.started.append,
                         notify=lambda text, severity: self.notes.append(text), **lane_kwargs)
        self.lane.pump()

    def run(self, *, result_if_cancelled=True, error=None):
        """Finish the running job: its real result, or the error given."""
        job = self.lane.running
        assert job is not None and self.started[-1] is job
        if error is not None:
            self.lane.finish(job.id, error=error)
        elif job.cancelled() and not result_if_cancelled:
            self.lane.finish(job.id, error=Cancelled("cancelled"))
        elif job.kind == "views":
            self.lane.finish(job.id, {name: job.ids for name in job.views})
        else:
            for old in job.forget:
                self.backend.forget(old)
            self.lane.finish(job.id, self.backend.sync(job.key, job.ids))

    def drain(self):
        for _ in range(1000):
            if self.lane.running is None:
                return
            self.run()
        raise AssertionError("the lane kept starting jobs")


def test_first_sync_then_idle():
    h = Harness()
    assert not h.lane.is_idle and h.lane.running.kind == "sync"
    h.run()
    assert h.lane.is_idle and h.lane.shown == h.lane.target
    assert [r.token_id for r in h.lane.records] == [0, 4, 5]


def test_append_waits_for_the_table_it_follows_and_takes_its_row():
    h = Harness()
    h.lane.press("append", row=2)  # before the first table: queued
    assert h.lane.pending == 1 and h.lane.book.current.ids == (0, 4, 5)
    h.run()  # the table for (0, 4, 5) arrives; the append applies and a new sync starts
    third = h.backend.sync("ref", (0, 4, 5))[-1].top[2].token_id
    assert h.lane.book.current.ids == (0, 4, 5, third) and h.lane.pending == 0
    h.drain()
    assert h.lane.is_idle and h.lane.shown[1] == (0, 4, 5, third)


def test_cancel_before_start_does_not_freeze():
    """The old app's freeze: a job superseded before its worker ran never reported back.
    Here the job is cancelled at once and ends with Cancelled; the lane moves on.
    (A wanted view never fetched for the prefixes: each pop needs a sync job.)"""
    h = Harness()
    h.lane.want({"influence"})
    h.drain()
    h.lane.press("pop")
    first = h.lane.running
    h.lane.press("pop")  # supersedes the first pop's sync before it ran
    assert first.cancelled() and h.lane.running is first  # no second job while one runs
    h.run(result_if_cancelled=False)
    assert h.lane.running is not None and h.lane.running.ids == (0,)
    h.drain()
    assert h.lane.is_idle and h.lane.shown[1] == (0,)


def test_result_of_a_superseded_job_is_shown_then_replaced():
    h = Harness()
    h.lane.want({"influence"})
    h.drain()
    h.lane.press("pop")
    h.lane.press("pop")
    h.run(result_if_cancelled=True)  # finished anyway: true for its own target
    assert h.lane.shown[1] == (0, 4) and not h.lane.in_sync
    h.drain()
    assert h.lane.shown[1] == (0,)


def test_a_pop_is_shown_at_once_with_the_views_it_had():
    """Pop needs no model work: the prefix's records and its kept views, no job."""
    h = Harness()
    h.lane.want({"influence"})
    h.drain()
    h.lane.press("append", row=1)
    h.drain()
    longer = h.lane.shown[1]
    started = h.lane.jobs_started
    h.lane.press("pop")
    assert h.lane.jobs_started == started and h.lane.running is None and h.lane.is_idle
    assert h.lane.shown[1] == (0, 4, 5)
    assert h.lane.records == h.backend.sync("check", (0, 4, 5))
    assert h.lane.views == {"influence": (0, 4, 5)}  # (the harness's view is its ids)
    h.lane.press("append", row=1)  # the same token again: its views were kept too
    h.drain()
    assert h.lane.shown[1] == longer and h.lane.views == {"influence": longer}


def test_a_pop_past_the_kept_views_takes_a_sync():
    h = Harness()
    h.lane.want({"influence"})
    h.drain()
    h.lane.press("pop")  # (0, 4) was never shown: no views kept for it
    assert h.lane.running.kind == "sync" and h.lane.running.ids == (0, 4)
    assert h.lane.shown[1] == (0, 4, 5)  # the screen waits for the job: one draw
    h.drain()
    assert h.lane.shown[1] == (0, 4) and h.lane.views == {"influence": (0, 4)}


def test_a_superseded_append_does_not_flash_after_a_pop():
    h = Harness()
    h.run()
    h.lane.press("append")
    append = h.lane.running
    h.lane.press("pop")  # shown at once; the append's sync is cancelled
    assert append.cancelled() and h.lane.in_sync and h.lane.shown[1] == (0, 4, 5)
    h.run(result_if_cancelled=True)  # its result arrives anyway
    assert h.lane.shown[1] == (0, 4, 5) and h.lane.is_idle


def test_stale_and_unknown_reports_are_ignored():
    h = Harness()
    job = h.lane.running
    h.lane.finish(job.id + 99, ())
    assert h.lane.running is job
    h.run()
    h.lane.finish(job.id, ())  # a second report for a finished job
    assert h.lane.is_idle and len(h.lane.records) == 3


def test_pop_below_one_token_and_removing_the_last_prompt_are_refused():
    h = Harness(ids=(0, 4))
    h.run()
    for _ in range(3):
        h.lane.press("pop")
    h.lane.press("remove")
    h.drain()
    assert h.lane.book.current.ids == (0,) and len(h.lane.book) == 1
    assert sum("only token" in n for n in h.notes) == 2 and any("last prompt" in n for n in h.notes)


def test_failed_sync_returns_the_book_to_what_is_shown_and_drops_the_queue():
    h = Harness()
    h.run()
    h.lane.press("append")
    h.lane.press("append")
    h.run(error=PromptTooLongError("too long"))
    assert h.lane.book.current.ids == (0, 4, 5) and h.lane.pending == 0 and h.lane.is_idle


def test_remove_forgets_the_prompt_in_the_next_job():
    h = Harness()
    h.run()
    h.lane.press("fork")
    h.drain()
    removed = h.lane.book.current.key
    h.lane.press("remove")
    assert h.lane.running.forget == (removed,)


def test_views_are_fetched_for_what_is_shown_and_dropped_when_ids_change():
    h = Harness()
    h.lane.want({"influence"})
    h.run()
    job = h.lane.running
    assert job.kind == "views" and job.views == {"influence"} and job.ids == (0, 4, 5)
    h.lane.finish(job.id, {"influence": [0.1, 0.2, 1.0]})
    assert h.lane.is_idle and h.lane.views["influence"] == [0.1, 0.2, 1.0]
    started = h.lane.jobs_started
    h.lane.want({"influence"})
    assert h.lane.jobs_started == started  # held: no model work
    h.lane.press("pop")
    h.run()
    assert "influence" not in h.lane.views and h.lane.running.kind == "views"


def test_a_failed_view_is_not_retried_for_the_same_prompt():
    h = Harness()
    h.lane.want({"influence"})
    h.run()
    h.run(error=RuntimeError("no attentions"))
    assert h.lane.running is None and h.lane.is_idle


def test_other_presses_run_in_key_order():
    seen = []
    h = Harness(on_press=lambda name: seen.append((name, h.lane.book.current.ids)))
    h.run()
    h.lane.press("pop")
    h.lane.press("save")
    h.lane.press("append")
    h.lane.press("save")
    h.drain()
    assert seen[0] == ("save", (0, 4)) and seen[1][0] == "save" and len(seen[1][1]) == 3


# -- property: any interleaving settles on the book's state ------------------------------------
PRESS = st.tuples(st.sampled_from(sorted(BOOK_PRESSES | {"save"})), st.integers(0, 7))
STEP = st.one_of(
    PRESS.map(lambda p: ("press",) + p),
    st.sampled_from([("run", True), ("run", False), ("want", frozenset()), ("want", frozenset({"influence"}))]),
)


def reference_book(start, presses, backend):
    """The book the presses must produce, applied one by one to a plain PromptBook, each
    append taking row `row` of the table computed for the prompt at that moment."""
    book = PromptBook([start])
    for name, row in presses:
        try:
            if name == "append":
                top = backend.sync("ref", book.current.ids)[-1].top
                book.append(top[min(row, len(top) - 1)].token_id)
            elif name in BOOK_PRESSES:
                {"pop": book.pop, "previous": book.previous, "next": book.next,
                 "fork": book.fork, "remove": book.remove, "reset": book.reset}[name]()
        except ValueError:
            pass  # refused (last token, last prompt): the lane notes it and goes on
    return book


@settings(max_examples=300, deadline=None)
@given(st.lists(STEP, max_size=60))
def test_any_interleaving_settles_on_the_books_state(steps):
    h = Harness()
    presses = []
    for step in steps:
        if step[0] == "press":
            presses.append(step[1:])
            h.lane.press(*step[1:])
        elif step[0] == "run" and h.lane.running is not None:
            h.run(result_if_cancelled=step[1])
        elif step[0] == "want":
            h.lane.want(step[1])
        assert h.lane.running is None or h.lane.running is h.started[-1]  # one job at a time
    h.lane.want(frozenset())
    h.drain()
    lane = h.lane
    assert lane.is_idle and lane.pending == 0 and lane.shown == lane.target
    assert lane.records == h.backend.sync("check", lane.book.current.ids)
    assert all(held == lane.shown[1] for held in lane.views.values())  # views of what is shown
    expected = reference_book((0, 4, 5), presses, h.backend)
    assert [(p.ids, p.original) for p in lane.book] == [(p.ids, p.original) for p in expected]
    assert lane.book.index == expected.index


def test_save_waits_until_the_screen_shows_what_it_saves():
    seen = []
    h = Harness(on_press=lambda name: seen.append((name, h.lane.shown, h.lane.book.current.ids)))
    h.run()
    h.lane.press("append", row=1)
    h.lane.press("save")
    assert seen == []  # the append's sync has not finished: the save waits behind it
    h.run()
    assert len(seen) == 1
    name, shown, ids = seen[0]
    assert name == "save" and shown[1] == ids and len(ids) == 4
    assert [r.token_id for r in h.lane.records] == list(ids)


def test_a_lane_stopped_for_a_swap_starts_no_job_after_the_running_one():
    """A model switch waits for the running job; a wanted view (an attribution) must not
    start again the moment the cancelled job reports, or the switch waits for ever."""
    h = Harness()
    h.run()
    h.lane.want({"attribution"})
    job = h.lane.running
    assert job.kind == "views"
    assert h.lane.stop_for_swap() and job.cancelled()
    started = h.lane.jobs_started
    h.run(result_if_cancelled=False)
    assert h.lane.running is None and h.lane.jobs_started == started
    h.lane.press("pop")  # presses still move the book; no job starts
    assert h.lane.running is None and h.lane.jobs_started == started
    assert not h.lane.stop_for_swap()  # nothing runs: the swap may go ahead
