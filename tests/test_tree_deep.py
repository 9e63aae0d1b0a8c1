"""Trees deeper than Python's recursion limit, and trees stopped early (issue 22, item 4):
grown, rendered, exported and drawn without recursion; an incomplete tree is marked so
in its JSON; the app's `x` never writes over an earlier save."""

from __future__ import annotations

import json
import math
import sys

import pytest
from app_fixtures import SIZE, embedded_engine, make_app, requires_model, settle

from explorer.tree import TreeSettings, grow
from explorer.tree.export import leaf_lines, tree_dict, write_json, write_leaves_jsonl
from explorer.tree.render import render_text
from explorer.tree.search import Expansion


class Chain:
    """Every path has one likely next token (p = 0.9): id = depth mod 7, so the tree is a
    chain as deep as the settings allow; a second token (p = 0.05) branches at T <= 0.05."""

    forward_passes = 0

    def expand(self, paths, floor, most):
        self.forward_passes += 1
        return [Expansion(0.4, (len(p) % 7, 7 + len(p) % 5), (math.log(0.9), math.log(0.05))) for p in paths]


def chain_tree(depth: int, nodes: int):
    settings = TreeSettings(t_min=1.0, t_max=1.0, max_depth=depth, max_nodes=nodes)
    return grow(Chain(), (1, 2, 3), settings, token_text=lambda i: f"t{i}",
                decode=lambda ids: "".join(f"t{i}" for i in ids))


def nesting(node: dict) -> int:
    depth = 0
    while node["children"]:
        node, depth = node["children"][0], depth + 1
    return depth + 1


def test_a_tree_3000_tokens_deep_grows_renders_and_exports(tmp_path):
    tree = chain_tree(3000, 3000)
    assert tree.size == 3000 and len(tree.leaves()) == 1 and tree.complete
    leaf = tree.leaves()[0]
    assert leaf.depth == 3000 and leaf.end == "depth"
    lines = render_text(tree).splitlines()
    assert len(lines) == 1 + 3000 and lines[-1].startswith("  " * 2999 + "t")

    write_json(tree, tmp_path / "t.json")
    write_leaves_jsonl(tree, tmp_path / "t.jsonl")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # json's reader recurses per level (the docs say so)
    try:
        saved = json.loads((tmp_path / "t.json").read_text())
        expected = json.dumps(tree_dict(tree), ensure_ascii=False) + "\n"
    finally:
        sys.setrecursionlimit(limit)
    assert saved["complete"] is True and saved["stopped"] == "done"
    assert nesting(saved["children"][0]) == 3000
    assert (tmp_path / "t.json").read_text() == expected  # what json's own encoder writes
    (line,) = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert line["tokens"] == [f"t{d % 7}" for d in range(3000)] == [n.token for n in tree.nodes()]
    assert line["cum_logprob"] == pytest.approx(3000 * math.log(0.9))


def test_a_tree_stopped_by_the_node_limit_is_marked_incomplete(tmp_path):
    tree = chain_tree(50, 10)
    assert tree.stopped == "nodes" and not tree.complete and tree.size == 10
    write_json(tree, tmp_path / "t.json")
    saved = json.loads((tmp_path / "t.json").read_text())
    assert saved["complete"] is False and saved["stopped"] == "nodes"
    assert [line["end"] for line in leaf_lines(tree)] == ["open"]


def test_a_cancelled_tree_keeps_its_nodes_and_is_marked():
    calls = []
    settings = TreeSettings(t_min=1.0, t_max=1.0, max_depth=100, max_nodes=100)
    tree = grow(Chain(), (1,), settings, token_text=str, decode=str,
                cancelled=lambda: calls.append(1) or len(calls) > 5)
    assert tree.stopped == "cancelled" and tree.size == 5 and tree_dict(tree)["complete"] is False


@requires_model
async def test_app_draws_a_deep_tree_and_saves_each_time_under_a_free_name(tmp_path, monkeypatch):
    from explorer.ui.tree_screen import TreeScreen

    deep = chain_tree(1500, 1500)
    app = make_app(tmp_path)
    monkeypatch.setattr(embedded_engine(), "grow_tree", lambda key, settings, **kw: deep)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("b")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, TreeScreen) and screen.token_tree is deep and screen.error is None
        await pilot.press("x")
        await pilot.press("x")
        await settle(app, pilot)
    saved = tmp_path / "saved"
    jsons = sorted(p.name for p in saved.glob("*.json"))
    leaves = sorted(p.name for p in saved.glob("*.leaves.jsonl"))
    assert len(jsons) == 2 and len(leaves) == 2, (jsons, leaves)
    stems = {n[: -len(".json")] for n in jsons}
    assert stems == {n[: -len(".leaves.jsonl")] for n in leaves}
    assert any(s.endswith("-tree-2") for s in stems)
