"""Pilot test of issue 24's keys: `e` cycles none → probability → entropy → influence →
none and never starts an attribution (a gradient job); `i` turns attribution on with the
first method, cycles the methods and turns it off past the last; `esc` turns it off."""

from __future__ import annotations

from app_fixtures import SIZE, RecordingApp, settle
from app_fixtures import app_settings as settings_for
from test_app_attribution import GatedBackend

from explorer.backend.types import ATTRIBUTION_METHODS
from explorer.ui.views import ColourLayer


async def test_e_cycles_without_attribution_and_i_starts_it():
    backend = GatedBackend()
    backend.release.set()  # attributions finish at once here
    app = RecordingApp(settings_for(), engine=backend)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        seen = []
        for _ in range(8):  # twice round the cycle
            await pilot.press("e")
            await settle(app, pilot)
            seen.append(app.main.colour)
        cycle = [ColourLayer.PROBABILITY, ColourLayer.ENTROPY, ColourLayer.INFLUENCE, ColourLayer.NONE]
        assert seen == cycle * 2
        assert backend.started == []  # no attribution job, ever
        top = app.main.table.candidates

        await pilot.press("i")
        await settle(app, pilot)
        assert app.main.colour is ColourLayer.ATTRIBUTION
        assert backend.started == [top[0].token_id]
        assert app.main.attribution.method == ATTRIBUTION_METHODS[0] == "saliency"
        methods = ["saliency"]
        for _ in ATTRIBUTION_METHODS[1:]:
            await pilot.press("i")
            await settle(app, pilot)
            methods.append(app.main.attribution.method)
        assert methods == list(ATTRIBUTION_METHODS) and methods[-1] == "attention"
        await pilot.press("i")  # past the last method: off
        await settle(app, pilot)
        assert app.main.colour is ColourLayer.NONE and app.main.attribution is None

        await pilot.press("i", "e")  # e from attribution: back to none, not on to it
        await settle(app, pilot)
        assert app.main.colour is ColourLayer.NONE
        await pilot.press("i")
        await settle(app, pilot)
        assert app.main.colour is ColourLayer.ATTRIBUTION
        await pilot.press("escape")  # esc: off, even when the scores are shown
        await settle(app, pilot)
        assert app.main.colour is ColourLayer.NONE
        assert not [note for note, severity in app.notes if severity == "error"]
