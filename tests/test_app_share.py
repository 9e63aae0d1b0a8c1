"""The app's share keys: `H` writes the HTML report of what the screen shows (the shown
prompt's tokens and numbers are the lane's records), `P` opens and closes the plot panel,
and both are palette commands."""

from __future__ import annotations

import math

from app_fixtures import SIZE, make_app, requires_model, settle
from test_report import page_data

from explorer.ui.plot_panel import PlotPanel

pytestmark = requires_model


async def test_h_writes_the_report_and_p_toggles_the_plot(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for key in ("right", "e", "e", "m", "H"):
            await pilot.press(key)
            await settle(app, pilot)
        (path,) = (tmp_path / "saved").glob("report-*.html")
        data = page_data(path.read_text(encoding="utf-8"))
        records = app.main.records
        assert [t["id"] for t in data["tokens"]] == [r.token_id for r in records]
        for t, r in zip(data["tokens"][1:], records[1:]):
            assert t["prob"] == math.exp(r.logprob) and t["rank"] == r.rank
        assert '<option value="entropy" selected>' in path.read_text(encoding="utf-8")  # the layer on screen
        assert any(text.startswith("Wrote ") and "report-" in text for text, _ in app.notes)
        plot = app.main.query_one(PlotPanel)
        assert not plot.display
        await pilot.press("P")
        await settle(app, pilot)
        assert plot.display and [name for name, _, _ in plot.charts] == ["nats", "p_base"]
        await pilot.press("P")
        await settle(app, pilot)
        assert not plot.display
        titles = [c.title for c in app.main.commands()]
        assert {"Plot panel", "Write HTML report", "Resume last session"} <= set(titles)
