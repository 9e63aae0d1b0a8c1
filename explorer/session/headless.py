"""Drive the explorer core with no UI: its lane's jobs run here, one at a time, in the
calling thread (the app runs them in thread workers, explorer.ui.jobs). For scripts and
tests: the same presses, edits, choose function and autoplay as the app.
"""

from __future__ import annotations

import time

from collections import deque
from collections.abc import Sequence

from explorer.session.book import Prompt, PromptBook
from explorer.session.explorer import Explorer
from explorer.session.fetch import ride_along, sync_job, views_job
from explorer.session.job import Job, Synced
from explorer.session.views import JobKind, View


def run_job(backend, job: Job):
    """(result, error) of one lane job, as the app's worker reports it (no chained appends)."""
    try:
        if job.kind is JobKind.SYNC:
            return Synced(sync_job(backend, job), ride_along(backend, job), job.ids), None
        return views_job(backend, job), None
    except Exception as exc:  # noqa: BLE001 - handed to the lane, as the app does
        return None, exc


class Headless:
    """An Explorer whose jobs run when `settle()` is called; `notes` keeps what it said.
    The views wanted are the kept logits row (a server's draw), with pins the tracked
    tokens, and at a past position its raw row: what the app's main view asks for with no
    colour layer on."""

    def __init__(self, backend, sampling_config, *, on_press=lambda name: None) -> None:
        """on_press(name): presses that are not book edits ("save"), in order."""
        self.jobs: deque[Job] = deque()
        self.notes: list[str] = []
        self.core = Explorer(backend, sampling_config, start_job=self.jobs.append, notify=self._note,
                             lane_note=lambda text, severity: self.notes.append(text), on_press=on_press)

    def _note(self, text: str, **kwargs) -> None:
        self.notes.append(text)

    def open(self, ids: Sequence[int]) -> Explorer:
        self.core.open(PromptBook([Prompt.new(ids)]))
        self.settle()
        return self.core

    def settle(self) -> None:
        """Run jobs (and autoplay's next presses) until nothing is left to do."""
        while True:
            core, lane = self.core, self.core.lane
            lane.chaining = False  # jobs never run beside a press here
            wanted = {View.DRAW if core.samples_on_server else View.LOGITS}
            lane.want(wanted | ({View.TRACKED} if lane.tracked else set()) | core.cursor.views())
            core.sync_sampler()
            if not self.jobs:
                wait = core.autoplay_tick()
                if wait is not None:  # autoplay's step delay: a script waits it out
                    time.sleep(wait)
                    continue
                if not self.jobs:
                    return
                continue
            self.step()

    def step(self) -> None:
        """Run the next job only (no autoplay tick): a test's finer step than settle()."""
        job = self.jobs.popleft()
        result, error = run_job(self.core.backend, job)
        self.core.lane.finish(job.id, result, error)
