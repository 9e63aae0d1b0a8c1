"""The plot panel (explorer/ui/plot_panel.py) and its braille drawing (explorer/display/plot.py):
dots where the values put them, checked by hand-computed cells; the panel's curves are the
embedded model's numbers; an SVG snapshot of the panel.

Regenerate the snapshot after a deliberate change:
    uv run pytest tests/test_plot_panel.py --snapshot-update
"""

from __future__ import annotations

import math

import pytest
from app_fixtures import embedded_engine, requires_model
from textual.app import App, ComposeResult

from explorer.display.plot import canvas
from explorer.ui.plot_panel import PlotPanel, curves


def test_a_rising_line_fills_the_cells_it_crosses():
    # 2 cells wide, 1 high: 4 × 4 dots. Points (0, 0) and (3, top): x 0..3, y 3..0.
    grid = canvas([[0.0, 1.0]], 2, 1, 1.0)
    left, right = grid[0]
    # Dots (0,3), (1,2) in the left cell: bits 0x40 and 0x20; (2,1), (3,0) right: 0x02, 0x08.
    assert left == (chr(0x2800 + 0x40 + 0x20), 0) and right == (chr(0x2800 + 0x02 + 0x08), 0)


def test_a_missing_value_leaves_a_gap_and_the_last_curve_owns_a_shared_cell():
    grid = canvas([[1.0, None, 1.0], [0.0, 0.0, 0.0]], 3, 2, 1.0)
    top, bottom = grid
    assert [owner for _, owner in top] == [0, None, 0]  # no line across the gap
    assert all(owner == 1 for _, owner in bottom)
    assert canvas([[math.nan]], 2, 1)[0] == [(chr(0x2800), None)] * 2


def test_curves_are_the_models_numbers():
    engine = embedded_engine()
    ids = engine.encode("Once upon a time there was")
    records = engine.sync("plot-curves", ids)
    try:
        series = engine.tracked("plot-curves", engine.encode_plain(" the"))
    finally:
        engine.forget("plot-curves")
    prompt, tracked = curves(records, series, engine.token_text)
    (_, surprisal), (_, entropy) = prompt
    assert surprisal[0] is None and entropy[0] is None
    assert surprisal[1:] == [-r.logprob for r in records[1:]]
    assert entropy[1:] == [r.entropy for r in records[1:]]
    ((name, probs),) = tracked
    assert name == "␣the" and len(probs) == len(ids)
    assert probs[1:] == pytest.approx([math.exp(v) for v in series.logprobs[:-1, 0].tolist()], rel=1e-5)


class PlotApp(App):
    CSS = "Screen { align: center top; }"

    def __init__(self, prompt, tracked) -> None:
        super().__init__()
        self.data = (prompt, tracked)

    def compose(self) -> ComposeResult:
        yield PlotPanel(id="plot")

    def on_mount(self) -> None:
        self.query_one(PlotPanel).show(*self.data)


@requires_model
def test_plot_panel_snapshot(snap_compare):
    engine = embedded_engine()
    ids = engine.encode("Once upon a time there was a little girl who lived in a village near the forest.")
    records = engine.sync("plot-snap", ids)
    try:
        series = engine.tracked("plot-snap", engine.encode_plain(" the") + engine.encode_plain(" a"))
    finally:
        engine.forget("plot-snap")
    assert snap_compare(PlotApp(*curves(records, series, engine.token_text)), terminal_size=(90, 22))


@requires_model
def test_app_plot_panel_snapshot(snap_compare):
    """The app with two pinned tokens and the plot panel open (P)."""
    from app_fixtures import SIZE, make_app, settle

    async def run_before(pilot) -> None:
        await settle(pilot.app, pilot)
        for key in ("m", "down", "m", "P"):
            await pilot.press(key)
            await settle(pilot.app, pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)
