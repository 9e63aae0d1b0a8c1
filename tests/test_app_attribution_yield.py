"""Pilot tests: an attribution never holds up a key that needs the model. `→` pressed while
one runs appends its token before the attribution is done (it yields, then starts again
for the new prompt), the legend names the candidate whose attribution is computed, the
busy bar shows its progress, and `esc` leaves nothing computing."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
from app_fixtures import SIZE, RecordingApp, screen_text, settle
from app_fixtures import app_settings as settings_for
from fake_backend import TableBackend
from textual.widgets import ProgressBar

from explorer.backend import Cancelled
from explorer.backend.types import Attribution
from explorer.ui.views import ColourLayer

PASSES = 10


class PassBackend(TableBackend):
    """The table backend with an attribution of PASSES passes, each of which runs only when
    the test allows it (`allow(n)`), polling its cancel flag and reporting its progress
    meanwhile, as the engine does between layers. No timing, no sleeps in the test."""

    def __init__(self) -> None:
        super().__init__()
        self._allowed = threading.Semaphore(0)
        self.started: list[int] = []
        self.cancelled_targets: list[int] = []
        self.cancelled_after: list[int] = []  # passes done when each cancelled one stopped
        self.done = 0  # passes run by the attribution running now

    @property
    def capabilities(self):
        return replace(super().capabilities, attribution=True)

    def close(self) -> None:
        self.allow(10 * PASSES)  # a test that failed midway must not leave the worker waiting
        super().close()

    def allow(self, n: int) -> None:
        for _ in range(n):
            self._allowed.release()

    def attribution(self, key, target, method="saliency", *, n_steps=32, baseline=None, progress=None,
                    cancelled=None):
        self.started.append(target)
        self.done = 0
        while self.done < PASSES:
            if cancelled is not None and cancelled():
                self.cancelled_targets.append(target)
                self.cancelled_after.append(self.done)
                raise Cancelled("cancelled")
            if progress is not None:
                progress(self.done, PASSES)
            if self._allowed.acquire(timeout=0.01):
                self.done += 1
        ids = self.records(key)
        values = np.arange(len(ids), dtype=np.float32) * (target + 1)
        return Attribution(ids=tuple(r.token_id for r in ids), target=target, method=method,
                           values=values, log_p=-1.0)


async def wait_until(pilot, condition) -> None:
    for _ in range(3_000):
        if condition():
            return
        await pilot.pause()
    raise AssertionError("never happened")


def busy_bar(app) -> ProgressBar:
    return app.main.query_one("#busy-progress", ProgressBar)


async def test_right_during_an_attribution_appends_first_and_the_legend_follows():
    backend = PassBackend()
    app = RecordingApp(settings_for(), engine=backend)
    try:
        await _right_during(app, backend)
    finally:
        backend.allow(100 * PASSES)


async def _right_during(app, backend):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = app.main.shown[1]
        first = app.main.table.selected()
        await pilot.press("i")
        assert app.main.colour is ColourLayer.ATTRIBUTION
        await wait_until(pilot, lambda: backend.started == [first.token_id])
        backend.allow(3)
        await wait_until(pilot, lambda: backend.done == 3)
        # The progress bar the README promises: 3 of the 10 passes.
        await wait_until(pilot, lambda: busy_bar(app).progress == 3)
        assert busy_bar(app).total == PASSES and app.main.query_one("#busy").display
        assert "esc cancels" in screen_text(app)

        await pilot.press("right")  # needs the model: the attribution yields to it
        await wait_until(pilot, lambda: app.main.shown is not None and len(app.main.shown[1]) == len(ids) + 1)
        assert app.main.shown[1] == ids + (first.token_id,)
        assert backend.cancelled_targets == [first.token_id] and backend.cancelled_after == [3]
        assert app.main.lane.preempted == 1

        # It starts again for the candidate now under the cursor of the new table, and
        # the legend names that candidate, not the one before.
        new = app.main.table.selected()
        assert new.token_id != first.token_id
        await wait_until(pilot, lambda: len(backend.started) >= 2)
        assert backend.started == [first.token_id, new.token_id]
        legend = " ".join(screen_text(app).split())
        assert f"saliency of log p({new.text!r})" in legend
        assert f"log p({first.text!r})" not in legend

        await pilot.press("escape")  # stops it; once its worker has stopped, nothing computes
        await settle(app, pilot)
        assert backend.cancelled_targets == [first.token_id, new.token_id]
        assert app.main.colour is ColourLayer.NONE and not app.main.lane.busy and app.is_idle
        assert "computing" not in screen_text(app)
        assert not app.main.query_one("#busy").display
        assert not [note for note, severity in app.notes if severity == "error"]


async def test_a_finished_attribution_names_its_own_candidate_after_an_append():
    backend = PassBackend()
    app = RecordingApp(settings_for(), engine=backend)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        backend.allow(10_000)  # every pass runs at once
        await pilot.press("i")
        await settle(app, pilot)
        await pilot.press("down", "right")
        await settle(app, pilot)
        shown = app.main.attribution
        assert shown is not None and shown.target == app.main.table.selected().token_id
        assert shown.ids == app.main.shown[1]
        assert f"saliency of log p({app.main.table.selected().text!r})" in " ".join(screen_text(app).split())
