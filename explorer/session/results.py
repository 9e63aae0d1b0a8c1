"""What the lane does with a job's result (accept) or failure (recover). No Textual; split
from explorer.session.lane, which calls these from `finish`, so that the queue and the
pump stay in one file and the result rules in another."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from explorer.session.job import Job, Synced
from explorer.session.views import JobKind, View

if TYPE_CHECKING:  # (the lane imports these functions)
    from explorer.session.lane import Lane


def accept(lane: Lane, job: Job, result: Any) -> None:
    """Take a finished job's result: a sync's records (and views) onto the screen, a
    views job's arrays into lane.views when they are still for what is shown."""
    if job.kind is JobKind.SYNC:
        if isinstance(result, Synced) and result.ids is not None and job.chain is not None:
            lane._take_chained(job, tuple(result.ids))
        if lane.in_sync and job.target != lane.target:
            return  # superseded, and the screen already shows the book (a pop)
        records, extra = (result.records, result.views) if isinstance(result, Synced) else (result, {})
        if lane.shown is None or lane.shown[1] != job.ids:
            lane._show(job.target, tuple(records), dict(extra))
        else:
            lane.shown, lane.records = job.target, tuple(records)
            lane.views.update(extra)
        lane._failed_target = None
    elif lane.shown is not None and job.ids == lane.shown[1]:
        got = dict(result) if isinstance(result, Mapping) else {}
        stale = set()  # fetched for tracked tokens or sampler settings since changed
        if job.tracked != lane.tracked:
            stale.add(View.TRACKED)
        if job.sampling != lane.sampling:
            stale.add(View.DRAW)
        for name in stale:
            got.pop(name, None)
        lane.views.update(got)
        lane._failed_views |= job.views - got.keys() - stale  # never ask again in a loop

def recover(lane: Lane, job: Job) -> None:
    """A job failed (its error is the caller's to show): drop the presses queued behind
    it and go back to what is shown, so nothing on screen is lost."""
    lane._queue.clear()
    if job.kind is JobKind.VIEWS:
        lane._failed_views |= job.views  # no retry loop; the caller turns the view off
        return
    lane._failed_target = job.target
    if lane.shown is None:
        return
    key, ids = lane.shown
    try:
        lane.book.select(key)
    except KeyError:
        return  # the shown prompt was removed; stay on the failed one
    lane.book.set_ids(ids)
