"""SVG snapshots of the table under a constraint: the allowed tokens listed (the default),
or all tokens (C) with forbidden candidates struck through with "✗ forbidden" (apart from
top-k/top-p's greyed "excluded"), the header naming the constraint, the legend saying what
each look means.

Regenerate after a deliberate change:
    uv run pytest tests/test_snapshots_constraint.py --snapshot-update
"""

from __future__ import annotations

from app_fixtures import SIZE, make_app, requires_model, settle

from explorer.sampling import SamplingConfig

pytestmark = requires_model


def _with_constraint(kind: str, text: str, *keys: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await settle(app, pilot)
        await pilot.press("c")
        await pilot.pause()
        app.screen.query_one("#kind").value = kind
        app.screen.query_one("#text").text = text
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        for key in keys:
            await pilot.press(key)
            await settle(app, pilot)
        app.clear_notifications()
        await pilot.pause()

    return run_before


def test_regex_forbidden_rows_beside_top_k_exclusions(snap_compare):
    """top-k 12 with a regex for a number, all tokens listed (C): the digits stay, words
    are forbidden, and the valid tokens past the twelfth are excluded by top-k."""
    app = make_app(sampling=SamplingConfig(preset="balanced", values={"seed": 1234, "top_k": 12}))
    assert snap_compare(app, terminal_size=SIZE, run_before=_with_constraint("regex", r" [0-9]{1,3}\.", "C"))


def test_regex_lists_the_allowed_tokens(snap_compare):
    """The default under a constraint: the table lists the allowed tokens, likeliest first
    (with `[0-9]{3}` the model's own top tokens are all words), and the legend says so."""
    app = make_app(sampling=SamplingConfig(values={"seed": 1234, "temperature": 1.0}))
    assert snap_compare(app, terminal_size=SIZE, run_before=_with_constraint("regex", "[0-9]{3}"))


def test_choice_constraint_after_a_sampled_token(snap_compare):
    app = make_app(sampling=SamplingConfig(values={"seed": 1234, "temperature": 1.0}))
    assert snap_compare(app, terminal_size=SIZE,
                        run_before=_with_constraint("choice", " the end\n the start\n a cat", "space"))


def test_constraint_panel(snap_compare):
    app = make_app(sampling=SamplingConfig(values={"seed": 1234}))

    async def run_before(pilot) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("c")
        await pilot.pause()
        pilot.app.screen.query_one("#text").text = '{"type": "object", "properties": {"ok": {"type": "boolean"}}}'
        pilot.app.screen.query_one("#kind").value = "json_schema"
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_choice_constraint_complete(snap_compare):
    """Autoplay to the end of a choice, then pop the end-of-sequence token: the text is a
    whole choice, only end-of-sequence is allowed, and the table's title says so."""
    app = make_app(sampling=SamplingConfig(values={"seed": 1234, "temperature": 1.0}))
    assert snap_compare(app, terminal_size=SIZE,
                        run_before=_with_constraint("choice", " man named Tom.\n little dog.",
                                                    "g", "left"))
