"""`main.py tree`: the headless tree command, its flags over config.toml's [tree], and
the JSON / JSONL export, checked against the engine's own tree and the issue's fields."""

from __future__ import annotations

import json
import math

import pytest
from app_fixtures import embedded_engine, requires_model

from explorer import cli
from explorer.config import ConfigError, load_settings
from explorer.tree import TreeSettings

NODE_FIELDS = {"token_id", "token", "p", "cum_logprob", "entropy", "depth", "children"}


def test_tree_flags_over_config(tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text("[tree]\nt_min = 0.05\nmax_nodes = 50\nstop = \"\\n\"\n")
    assert load_settings(conf).tree == TreeSettings(t_min=0.05, max_nodes=50, stop=("\n",))
    args = cli.parse_args(["--config", str(conf), "--max-nodes", "9", "--tree-stop", ".", "--batch", "2"])
    tree = cli.settings_from_args(args).tree
    assert (tree.t_min, tree.max_nodes, tree.stop, tree.batch) == (0.05, 9, (".",), 2)


@pytest.mark.parametrize("text, words", [
    ("[tree]\nt_min = 2\n", "t_min must be a number in [0, 1]"),
    ("[tree]\nt_min = 0.6\nt_max = 0.5\n", "must not be larger than t_max"),
    ("[tree]\nmax_nodes = 0\n", "max_nodes must be a whole number of at least 1"),
    ("[tree]\ndepth = 3\n", "unknown key tree.depth"),
])
def test_bad_tree_config_is_one_sentence(tmp_path, text, words):
    conf = tmp_path / "config.toml"
    conf.write_text(text)
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_settings(conf)


def test_bad_tree_flag_is_one_sentence_exit_2(capsys):
    assert cli.main(["tree", "--t-min", "0.7", "--t-max", "0.2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "t_min (0.7) must not be larger than t_max (0.2)" in err


@requires_model
def test_tree_command_prints_and_exports(tmp_path, capsys):
    out_json, out_jsonl = tmp_path / "t.json", tmp_path / "leaves.jsonl"
    code = cli.main(["tree", "--model", "embedded", "--prompt", "Once upon a time", "--t-min", "0.03", "--t-max", "0.3",
                     "--max-nodes", "12", "--max-depth", "4", "--json", str(out_json),
                     "--jsonl", str(out_jsonl)])
    assert code == 0
    printed = capsys.readouterr().out
    # the same tree as the engine grows for the same prompt and settings
    engine = embedded_engine()
    ids = engine.encode("Once upon a time")
    engine.sync("cli-check", ids)
    settings = TreeSettings(t_min=0.03, t_max=0.3, max_nodes=12, max_depth=4)
    tree = engine.grow_tree("cli-check", settings)
    data = json.loads(out_json.read_text())
    assert data["prompt_ids"] == ids and data["settings"] == settings.as_dict()

    def check(level, nodes):
        assert len(level) == len(nodes)
        for got, node in zip(level, nodes):
            assert NODE_FIELDS <= got.keys()
            assert got["token_id"] == node.token_id and got["depth"] == node.depth
            # another engine (loaded without influence): float32 paths differ by ~1e-6
            assert got["p"] == pytest.approx(node.p, abs=1e-4)
            assert got["cum_logprob"] == pytest.approx(node.cum_logprob, abs=1e-4)
            check(got["children"], node.children)

    check(data["children"], tree.children)
    for node in tree.nodes():  # the indented text shows every node
        assert f"{node.token}  p {node.p:.3f}" in printed

    def raw(level):  # files hold the decoded text itself, never display markers (␣, ↵)
        for got in level:
            assert got["token"] == engine.decode([got["token_id"]])
            raw(got["children"])

    raw(data["children"])
    assert any(" " in got["token"] for got in data["children"])  # a space stays a space
    lines = [json.loads(line) for line in out_jsonl.read_text().splitlines()]
    assert len(lines) == len(tree.leaves())
    for line in lines:
        leaf = tree.find(tuple(line["token_ids"]))
        assert leaf is not None and leaf.is_leaf and line["text"] == engine.decode(line["token_ids"])
        assert line["tokens"] == [engine.decode([t]) for t in line["token_ids"]]
        assert line["cum_logprob"] == pytest.approx(sum(math.log(tree.find(tuple(line["token_ids"][:i])).p)
                                                        for i in range(1, len(line["token_ids"]) + 1)), abs=1e-5)
