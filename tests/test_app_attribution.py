"""Pilot tests of the attribution layer on the embedded model: it follows the table cursor,
`i` picks the method, the legend names target and method, and esc cancels."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
from app_fixtures import SIZE, RecordingApp, embedded_engine, make_app, requires_model, screen_text, settle
from app_fixtures import app_settings as settings_for
from fake_backend import TableBackend

from explorer.backend import Cancelled
from explorer.backend.types import Attribution

from explorer.ui.views import ColourLayer



def reference(app, row: int, method: str):
    """The same attribution straight from the engine, under a key of the test's own."""
    engine = embedded_engine()
    engine.sync(("attribution-reference",), app.main.shown[1])
    target = app.main.table.candidates[row].token_id
    return engine.attribution(("attribution-reference",), target, method)


@requires_model
async def test_attribution_follows_the_cursor_and_the_method():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("i")  # the attribution layer, first method
        await settle(app, pilot)
        assert app.main.colour is ColourLayer.ATTRIBUTION
        first = app.main.attribution
        assert first is not None and first.method == "saliency"
        top = app.main.table.candidates
        assert first.target == top[0].token_id and first.ids == app.main.shown[1]
        np.testing.assert_allclose(first.values, reference(app, 0, "saliency").values, atol=1e-6)
        text = screen_text(app)
        assert "colour: attribution" in text
        assert f"saliency of log p({top[0].text!r})" in text

        await pilot.press("down")  # the cursor moves: another target, other scores
        await settle(app, pilot)
        second = app.main.attribution
        assert second.target == top[1].token_id
        assert not np.allclose(second.values, first.values)
        assert f"saliency of log p({top[1].text!r})" in screen_text(app)

        await pilot.press("i")  # input x gradient: signed, a diverging scale
        await settle(app, pilot)
        third = app.main.attribution
        assert third.method == "input_x_gradient" and third.target == top[1].token_id
        np.testing.assert_allclose(third.values,
                                   reference(app, 1, "input_x_gradient").values, atol=1e-6)
        assert "-max" in screen_text(app) and "input x gradient of log p(" in screen_text(app)

        await pilot.press("up")  # back to the first candidate
        await settle(app, pilot)
        assert app.main.attribution.target == top[0].token_id

        jobs = app.main.lane.jobs_started
        for method in ("integrated_gradients", "attention"):
            await pilot.press("i")
            await settle(app, pilot)
            assert app.main.attribution.method == method
        assert app.main.lane.jobs_started == jobs + 2
        await pilot.press("i")  # past the last method: the layer goes off
        await settle(app, pilot)
        assert app.main.colour is ColourLayer.NONE
        await pilot.press("i")  # on again, saliency first: cached, no job
        await settle(app, pilot)
        assert app.main.attribution.method == "saliency"
        assert app.main.lane.jobs_started == jobs + 2
        assert not [note for note, severity in app.notes if severity == "error"]


class GatedBackend(TableBackend):
    """The table backend with an attribution that does not finish until released or
    cancelled, so a test can press keys while it runs (no timing, no sleeps)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started: list[int] = []
        self.cancelled_targets: list[int] = []

    @property
    def capabilities(self):
        return replace(super().capabilities, attribution=True)

    def attribution(self, key, target, method="saliency", *, n_steps=32, baseline=None, progress=None,
                    cancelled=None):
        self.started.append(target)
        while not self.release.wait(0.01):
            if cancelled is not None and cancelled():
                self.cancelled_targets.append(target)
                raise Cancelled("cancelled")
        ids = self.records(key)
        values = np.arange(len(ids), dtype=np.float32) * (target + 1)
        return Attribution(ids=tuple(r.token_id for r in ids), target=target, method=method,
                           values=values, log_p=-1.0)


async def wait_until(pilot, condition) -> None:
    for _ in range(10_000):
        if condition():
            return
        await pilot.pause()
    raise AssertionError("never happened")


async def test_moving_on_cancels_a_running_attribution_and_esc_turns_it_off():
    backend = GatedBackend()
    app = RecordingApp(settings_for(), engine=backend)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        top = app.main.table.candidates
        await pilot.press("i")
        await wait_until(pilot, lambda: backend.started == [top[0].token_id])
        assert "computing saliency (esc cancels)" in screen_text(app)
        await pilot.press("down")  # another target: the running one is cancelled
        await wait_until(pilot, lambda: backend.started == [top[0].token_id, top[1].token_id])
        assert backend.cancelled_targets == [top[0].token_id]
        await pilot.press("escape")  # stop it and turn the layer off
        await settle(app, pilot)
        assert backend.cancelled_targets == [top[0].token_id, top[1].token_id]
        assert app.main.colour is ColourLayer.NONE and app.main.attribution is None
        assert not [note for note, severity in app.notes if severity == "error"]
        backend.release.set()  # once released, the layer fills in
        await pilot.press("i")
        await settle(app, pilot)
        assert app.main.attribution.target == top[1].token_id
