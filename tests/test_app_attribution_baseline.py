"""Pilot test: `I` switches integrated gradients' baseline on the embedded model, and the
legend says which baseline the scores start from and how much of Δlog p they add up to."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from app_fixtures import SIZE, embedded_engine, make_app, requires_model, screen_text, settle

from explorer.config import AttributionSettings
from explorer.ui.views import ColourLayer

pytestmark = requires_model


def words(app) -> str:
    """The screen's text with line breaks as spaces: the legend wraps at 120 columns."""
    return " ".join(screen_text(app).split())


@pytest.mark.filterwarnings("ignore::UserWarning")
async def test_capital_i_cycles_the_baseline():
    app = make_app(attribution=replace(AttributionSettings(), baseline="eos"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("I")  # the layer was off: integrated gradients from the configured baseline
        await settle(app, pilot)
        assert app.main.colour is ColourLayer.ATTRIBUTION
        shown = app.main.attribution
        assert shown.method == "integrated_gradients" and shown.baseline == "eos"
        assert "from EOS embedding · i: method, I: baseline" in words(app)

        await pilot.press("I")  # the next baseline after eos
        await settle(app, pilot)
        kept = app.main.attribution
        assert kept.baseline == "eos-keep-first" and kept.target == shown.target
        engine = embedded_engine()  # the same numbers straight from the engine
        engine.sync(("baseline-reference",), app.main.shown[1])
        want = engine.attribution(("baseline-reference",), kept.target, "integrated_gradients",
                                  n_steps=kept.n_steps, baseline="eos-keep-first")
        np.testing.assert_allclose(kept.values, want.values, atol=1e-6)
        assert kept.values[0] == 0  # the first token is kept, so it scores nothing
        text = words(app)
        assert "from EOS embedding, first token kept" in text and f"· {kept.n_steps} steps" in text
        # Completeness shows only where the scores miss Δlog p by more than 2%.
        assert ("of Δlog p" in text) == (abs(kept.completeness - 1) > 0.02)

        jobs = app.main.lane.jobs_started
        for _ in range(4):  # mean-keep-first, zero, mean, eos: back where it started
            await pilot.press("I")
        await settle(app, pilot)
        assert app.main.attribution.baseline == "eos" and app.main.lane.jobs_started == jobs + 3
        assert not [note for note, severity in app.notes if severity == "error"]
