"""The lane on its own: a background view (an attribution, minutes of passes) yields to a
press that needs the model and to any other view, and is asked for again after."""

from __future__ import annotations

from test_lane import Harness

from explorer.backend import Cancelled

SLOW = "attribution:saliency:4"


def background_harness():
    h = Harness(background=lambda name: name.startswith("attribution:"))
    h.run()  # the first sync
    return h


def test_an_append_preempts_a_running_attribution_and_the_attribution_runs_after():
    h = background_harness()
    h.lane.want({SLOW})
    slow = h.lane.running
    assert slow.kind == "views" and slow.views == {SLOW} and not slow.cancelled()
    top = h.lane.records[-1].top
    h.lane.press("append", row=1)
    assert slow.cancelled()  # asked to stop at once: the press goes first
    assert h.lane.preempted == 1
    h.lane.finish(slow.id, error=Cancelled("cancelled"))  # it stops (between layers)
    sync = h.lane.running
    assert sync.kind == "sync" and sync.ids == (0, 4, 5, top[1].token_id)
    h.run()
    assert h.lane.shown[1] == (0, 4, 5, top[1].token_id)
    again = h.lane.running  # the attribution once more, for the prompt now shown
    assert again.kind == "views" and again.views == {SLOW} and again.ids == h.lane.shown[1]
    h.run()
    assert h.lane.is_idle and h.lane.views[SLOW] == h.lane.shown[1]


def test_another_view_goes_before_a_running_attribution():
    h = background_harness()
    h.lane.want({SLOW})
    slow = h.lane.running
    h.lane.want({SLOW, "tracked"})  # e.g. `m` pinned a token while the attribution ran
    assert slow.cancelled()
    h.lane.finish(slow.id, error=Cancelled("cancelled"))
    assert h.lane.running.views == {"tracked"}  # on its own, first
    h.run()
    assert h.lane.running.views == {SLOW}  # then the attribution again
    h.run()
    assert h.lane.is_idle and set(h.lane.views) == {SLOW, "tracked"}


def test_without_background_views_an_attribution_is_never_preempted():
    h = Harness()  # the lane as other callers make it: no view is background
    h.run()
    h.lane.want({SLOW})
    slow = h.lane.running
    h.lane.press("append", row=0)
    assert not slow.cancelled() and h.lane.pending == 1
