"""SVG snapshots of the two comparison screens (pytest-textual-snapshot).

Regenerate after a deliberate change:
    uv run pytest tests/test_snapshots_compare.py --snapshot-update
"""

from __future__ import annotations

from dataclasses import replace

from app_fixtures import SIZE, make_app, requires_model, settle

from explorer.config import ModelSettings

pytestmark = requires_model


def _after(*keys: str):
    async def run_before(pilot) -> None:
        await settle(pilot.app, pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot.app, pilot)
        # "Model B: …" is a toast whose timeout would race the screenshot.
        pilot.app.clear_notifications()
        await pilot.pause()

    return run_before


def test_branch_comparison(snap_compare):
    keys = ("right", "d", "down", "right", "right", "v")
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=_after(*keys))


def test_model_comparison(snap_compare):
    app = make_app()
    app.compare_settings = replace(app.settings, model=ModelSettings(name="embedded", dtype="bfloat16"))
    assert snap_compare(app, terminal_size=SIZE, run_before=_after("right", "V", "enter"))
