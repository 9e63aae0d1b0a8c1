"""`ex.positions` gives the lines the app's `x` saves: the app (Pilot pressing `x` on the
embedded model) and the API (on the saved prompt's exact ids) agree on every line."""

from __future__ import annotations

import json

import pytest
from app_fixtures import SIZE, make_app, requires_model, settle

import explorer

pytestmark = requires_model


@pytest.mark.filterwarnings("error::explorer.errors.ExplorerWarning")  # the saved ids, as saved
async def test_positions_are_the_lines_x_saves(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("x")
        await settle(app, pilot)
    (saved,) = (tmp_path / "saved").glob("*.json")
    x_lines = [json.loads(line) for line in saved.with_suffix(".jsonl").read_text(encoding="utf-8").splitlines()]
    with explorer.open(model="embedded") as ex:  # the name the app saved it under
        ours = ex.positions(input=saved).lines
    assert len(ours) == len(x_lines) > 1
    for a, b in zip(ours, x_lines):
        numbers = ("logprob", "entropy")
        assert {k: v for k, v in a.items() if k not in (*numbers, "top")} == \
               {k: v for k, v in b.items() if k not in (*numbers, "top")}
        for key in numbers:
            assert a[key] == pytest.approx(b[key], abs=1e-5)  # (the app's engine computes influence too)
        assert [c["token_id"] for c in a["top"]] == [c["token_id"] for c in b["top"]]
