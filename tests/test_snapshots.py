"""SVG snapshots of each colour layer and a layer view (pytest-textual-snapshot).

Regenerate after a deliberate change or a new embedded model:
    uv run pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest
from app_fixtures import SIZE, make_app, requires_model, settle

pytestmark = requires_model


def _after(*keys: str):
    async def run_before(pilot) -> None:
        await settle(pilot.app, pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot.app, pilot)

    return run_before


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param((), id="default"),
        pytest.param(("e",), id="probability"),
        pytest.param(("e", "e"), id="entropy"),
        pytest.param(("e", "e", "e"), id="influence"),
        pytest.param(("i",), id="attribution"),  # `i` reaches attribution, never `e`
        pytest.param(("down", "i", "i"), id="attribution-signed"),
    ],
)
def test_colour_layers(snap_compare, keys):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=_after(*keys))


def test_layer_probabilities_view(snap_compare):
    app = make_app(layer_prob=True)
    assert snap_compare(app, terminal_size=SIZE, run_before=_after("e", "p"))


def test_layer_correlations_after_steps(snap_compare):
    app = make_app(layer_prob=True)
    assert snap_compare(app, terminal_size=SIZE, run_before=_after("right", "down", "right", "p", "p"))


def test_unicode_prompt_with_layer_view(snap_compare):
    """Characters made of byte tokens read as text; heatmap columns: the character, then +."""
    from explorer.config import REPO_DIR

    app = make_app(layer_prob=True, input_path=REPO_DIR / "prompts" / "unicode.txt")
    assert snap_compare(app, terminal_size=SIZE, run_before=_after("e", "p"))


def test_narrow_terminal_after_append(snap_compare):
    assert snap_compare(make_app(), terminal_size=(40, 15), run_before=_after("right", "right"))


def test_token_tree_view(snap_compare):
    """`b` then right: the tree in place of the table, coloured by p, cursor on a child."""
    from explorer.tree import TreeSettings

    app = make_app(tree=TreeSettings(t_min=0.03, t_max=0.3, q_limit=4, max_depth=4, max_nodes=16))
    assert snap_compare(app, terminal_size=SIZE, run_before=_after("b", "right"))


def test_p_final_with_excluded_tokens(snap_compare):
    """The balanced preset (temperature 0.7, top-p 0.8) with top-k 12: kept tokens with
    p_final, the others listed and greyed; the title shows both entropies."""
    from explorer.sampling import SamplingConfig

    app = make_app(sampling=SamplingConfig(preset="balanced", values={"seed": 1234, "top_k": 12}))
    assert snap_compare(app, terminal_size=SIZE, run_before=_after())


def test_chat_prompt_special_tokens(snap_compare):
    from explorer.config import PromptSettings

    app = make_app(prompts=PromptSettings(chat=True, system="Be brief."))
    assert snap_compare(app, terminal_size=SIZE, run_before=_after())


def test_tracked_tokens_panel_with_lens(snap_compare):
    """Two pinned tokens after a sampled and a picked token: sparklines over every position,
    p_base / p_final / rank, and the lens strip per layer."""
    from explorer.sampling import SamplingConfig

    app = make_app(layer_prob=True, sampling=SamplingConfig(preset="creative", values={"seed": 1234}))
    assert snap_compare(app, terminal_size=SIZE, run_before=_after("space", "right", "m", "down", "m"))
