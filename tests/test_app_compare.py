"""The app's comparison screens with the Pilot: the branch comparison of a fork against its
parent, and the model comparison with a model B beside A (the embedded model against
itself at bf16), both numbers checked against the core's own independent path."""

from __future__ import annotations

import pytest
from app_fixtures import SIZE, make_app, requires_model, screen_text, settle

from explorer.compare import compare_models
from explorer.config import ModelSettings
from explorer.ui.compare_screen import BranchScreen, ModelScreen

pytestmark = requires_model


@pytest.fixture(scope="module")
def bf16():
    from explorer.engine import Engine

    return Engine.load(ModelSettings(name="embedded", device="cpu", dtype="bfloat16"), influence=False)


async def open_model_screen(pilot, bf16):
    """`V` with model B (the embedded model at bf16) loaded: the screen, its ranking checked
    against compare_models on the shown prompt, and that comparison."""
    app = pilot.app
    await pilot.press("V")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, ModelScreen) and not screen.computing
    _, ids = app.main.core.shown_prompt()
    want = compare_models(app.main.core.backend, bf16, ids)
    assert [p.position for p in screen.result.ranked()[:5]] == [p.position for p in want.ranked()[:5]]
    return screen, want, ids


async def open_branches(pilot):
    app = pilot.app
    await settle(app, pilot)
    for key in ("d", "down", "right", "right"):  # fork, then a different path on the copy
        await pilot.press(key)
        await settle(app, pilot)
    await pilot.press("v")
    await settle(app, pilot)


async def test_branch_comparison_of_a_fork_and_its_parent():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_branches(pilot)
        screen = app.screen
        assert isinstance(screen, BranchScreen) and not screen.computing
        got = screen.result
        parent = list(app.main.core.book)[0]
        assert got.b.key == parent.key and got.split == len(parent.ids)
        assert got.a.after == 2 and got.b.after == 0
        text = screen_text(app)
        assert f"they share {got.split} tokens" in text
        assert f"total log-prob {got.a.total_logprob:.3f}" in text
        assert "nothing after the split" in text
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, BranchScreen)


async def test_V_without_model_b_chooses_one_in_the_model_picker(bf16):
    """No --compare: `V` opens the model picker for model B, which offers model A's own
    weights at the other dtypes first; picking bfloat16 loads B, and `V` then compares."""
    from explorer.ui.model_switch import ModelPicker

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("V")
        await settle(app, pilot)
        picker = app.screen
        assert isinstance(picker, ModelPicker) and picker.for_b
        text = screen_text(app)
        assert "Model B, to compare with embedded" in text
        assert "embedded at bfloat16 (the same weights)" in text
        assert "embedded at float32" not in text  # A's own dtype is not offered
        await pilot.press("enter")  # the highlighted first choice: bfloat16
        await settle(app, pilot)
        assert app.screen is app.main and not app.main.compare_keys.loading_b
        b = app.main.core.comparisons.backend_b
        assert b is not None and b.info.dtype == "bfloat16"
        await open_model_screen(pilot, bf16)


async def test_escape_in_the_picker_for_model_b_loads_nothing():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("V")
        await settle(app, pilot)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is app.main and app.main.core.comparisons.backend_b is None
        assert not app.main.compare_keys.loading_b


async def test_branch_comparison_with_one_prompt_says_why():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("v")
        await settle(app, pilot)
        assert app.screen.error.startswith("There is only one prompt")
        assert "There is only one prompt" in screen_text(app)


async def test_model_comparison_screen(bf16):
    """Started as `main.py --compare-dtype bfloat16`: model B loads beside A in a worker."""
    from dataclasses import replace

    app = make_app()
    app.compare_settings = replace(app.settings, model=ModelSettings(name="embedded", dtype="bfloat16"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert not app.main.compare_keys.loading_b
        b = app.main.core.comparisons.backend_b
        assert b.info.dtype == "bfloat16" and any("Model B: embedded (bfloat16)" in n for n, _ in app.notes)
        await pilot.press("right")
        await settle(app, pilot)
        screen, want, ids = await open_model_screen(pilot, bf16)
        text = screen_text(app)
        assert "exact" in text and "top-1 agree" in text and "p_B" in text
        await pilot.press("enter")  # mark the most divergent position
        await settle(app, pilot)
        assert screen.marked == want.ranked()[0].position
        assert f"position {screen.marked} " in screen_text(app)
        await pilot.press("p")  # back to the main screen, its position cursor there
        await settle(app, pilot)
        assert app.screen is app.main and app.main.core.cursor.index == want.ranked()[0].position
        assert f"position {want.ranked()[0].position + 1}/{len(ids)}" in screen_text(app)
