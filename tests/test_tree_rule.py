"""The dynamic threshold rule and tree settings, with no model: hand-made distributions
and queue sizes, and a search over a hand-made expander."""

from __future__ import annotations

import math

import pytest

from explorer.tree import Expansion, TreeSettings, TreeSettingsError, grow, threshold


@pytest.mark.parametrize("queue, expected", [(0, 0.1), (2, 0.2), (4, 0.3), (8, 0.5), (20, 0.5)])
def test_threshold_rule_defaults(queue, expected):
    # T = 0.1 + min(1, q / 8) * 0.4, written out by hand
    assert threshold(queue, TreeSettings()) == pytest.approx(expected)


def test_threshold_rule_other_settings():
    s = TreeSettings(t_min=0.0, t_max=1.0, q_limit=3)
    assert [threshold(q, s) for q in range(5)] == pytest.approx([0, 1 / 3, 2 / 3, 1, 1])
    flat = TreeSettings(t_min=0.25, t_max=0.25)
    assert {threshold(q, flat) for q in range(10)} == {0.25}


@pytest.mark.parametrize("kwargs, words", [
    (dict(t_min=-0.1), "t_min"), (dict(t_max=1.5), "t_max"), (dict(t_min=0.6, t_max=0.5), "larger"),
    (dict(q_limit=0), "q_limit"), (dict(max_depth=0), "max_depth"), (dict(max_nodes=0), "max_nodes"),
    (dict(batch=0), "batch"), (dict(t_min=float("nan")), "t_min"), (dict(stop=("",)), "stop"),
    (dict(max_nodes=2.5), "max_nodes"), (dict(max_nodes=True), "max_nodes"),
])
def test_bad_settings_are_one_sentence(kwargs, words):
    with pytest.raises(TreeSettingsError) as info:
        TreeSettings(**kwargs)
    text = str(info.value)
    assert words in text and text.endswith(".") and "\n" not in text


def test_settings_from_table():
    s = TreeSettings.from_table({"t_min": 0, "max_nodes": 50, "stop": "\n"})
    assert (s.t_min, s.max_nodes, s.stop) == (0.0, 50, ("\n",))
    with pytest.raises(TreeSettingsError, match="tree.depth"):
        TreeSettings.from_table({"depth": 3})
    assert TreeSettings.from_table(s.as_dict()) == s


class TableExpander:
    """Distributions given by hand: path -> {token: p}; records what was asked."""

    def __init__(self, table, default):
        self.table, self.default = table, default
        self.forward_passes = 0
        self.asked: list[tuple] = []

    def expand(self, paths, floor, most):
        self.forward_passes += 1
        out = []
        for path in paths:
            self.asked.append(path)
            dist = self.table.get(path, self.default)
            items = sorted(dist.items(), key=lambda kv: -kv[1])
            keep = [kv for kv in items if kv[1] >= floor][:most] or items[:1]
            entropy = -sum(p * math.log(p) for p in dist.values() if p > 0)
            out.append(Expansion(entropy, tuple(t for t, _ in keep),
                                 tuple(math.log(p) for _, p in keep)))
        return out


def _grow(expander, settings, **kw):
    return grow(expander, [0], settings, token_text=str, decode=lambda ids: "".join(map(str, ids)), **kw)


def test_children_follow_the_queue_length():
    # Root: p = .45 .3 .15 .1 -> T = 0.1 (empty queue): all four open.
    # Then token 1 (best) expands with 3 paths open: T = 0.1 + 3/5 * 0.4 = 0.34, so of
    # .35 .35 .3 the two at .35 open (at max_depth 2 they end there, off the queue).
    table = {(): {1: 0.45, 2: 0.3, 3: 0.15, 4: 0.1},
             (1,): {5: 0.35, 6: 0.35, 7: 0.3}}
    expander = TableExpander(table, {9: 1.0})
    tree = _grow(expander, TreeSettings(t_min=0.1, t_max=0.5, q_limit=5, max_depth=2))
    assert [c.token_id for c in tree.children] == [1, 2, 3, 4]
    assert [c.token_id for c in tree.find((1,)).children] == [5, 6]
    # the most likely token always continues, even below T
    assert [c.token_id for c in tree.find((2,)).children] == [9]
    node = tree.find((1, 6))
    assert node.p == pytest.approx(0.35) and node.cum_logprob == pytest.approx(math.log(0.45 * 0.35))
    assert node.entropy == pytest.approx(-sum(p * math.log(p) for p in (0.35, 0.35, 0.3)))
    assert node.depth == 2 and node.end == "depth" and node.text == "16"
    # best first: after the root, paths in order of probability
    assert expander.asked[:3] == [(), (1,), (2,)]


def test_node_limit_and_cancel_keep_what_grew():
    expander = TableExpander({}, {1: 0.5, 2: 0.5})
    tree = _grow(expander, TreeSettings(t_max=0.1, max_depth=20, max_nodes=7))
    assert tree.size == 7 and tree.stopped == "nodes"
    seen = []
    tree = _grow(TableExpander({}, {1: 0.5, 2: 0.5}), TreeSettings(t_max=0.1, max_depth=20, max_nodes=99),
                 progress=lambda done, total: seen.append((done, total)),
                 cancelled=lambda: len(seen) >= 3)
    assert tree.stopped == "cancelled" and tree.size == seen[-1][0] == 6
    assert all(total == 99 for _, total in seen)
    assert {leaf.end for leaf in tree.leaves()} == {"open"}


def test_eos_and_stop_strings_end_paths():
    expander = TableExpander({}, {1: 0.5, 2: 0.3, 3: 0.2})
    tree = grow(expander, [0], TreeSettings(t_min=0.25, t_max=0.25, max_depth=5),
                token_text=str, decode=lambda ids: "".join("ab!"[i - 1] for i in ids), eos_ids={3})
    ends = {n.path: n.end for n in tree.nodes()}
    assert all(end in ("depth", None) for path, end in ends.items() if 3 not in path)
    tree = grow(TableExpander({}, {1: 0.5, 2: 0.5}), [0], TreeSettings(t_max=0.1, max_depth=5, stop=("ba",)),
                token_text=str, decode=lambda ids: "".join("ab"[i - 1] for i in ids))
    for node in tree.nodes():
        text = "".join("ab"[i - 1] for i in node.path)
        assert (node.end == "stop") == ("ba" in text)
        assert "ba" not in text[:-1]  # nothing grows past a stop
