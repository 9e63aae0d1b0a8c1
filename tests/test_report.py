"""The HTML report (explorer/report) from `trace --html` and `tree --html` on the embedded
model: every number in the page's data checked against one plain full forward pass of
transformers itself, tracked tokens too; the page needs nothing from the network; the tree
outline holds every node; nothing half-written; no Textual on the way."""

from __future__ import annotations

import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from app_fixtures import requires_model

from explorer import cli
from explorer.config import EMBEDDED_MODEL_DIR

pytestmark = requires_model

PROMPT = "Once upon a time, café 😀\n\t"
N_NEW, TOP_K, TOL = 6, 5, 1e-4


def page_data(html: str) -> dict:
    """The JSON the page's script reads (what the tooltip shows)."""
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    return json.loads(found.group(1).replace("<\\/", "</"))


def run_cli(args: list[str]) -> tuple[int, str]:
    with pytest.MonkeyPatch.context() as mp:
        out = io.StringIO()
        mp.setattr(sys, "stdout", out)
        code = cli.main(args)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    path, jsonl = folder / "trace.html", folder / "trace.jsonl"
    code, _ = run_cli(["trace", "--model", "embedded", "--prompt", PROMPT, "--max-new-tokens", str(N_NEW),
                       "--top-logprobs", str(TOP_K), "--track", " the", "--html", str(path),
                       "--jsonl", str(jsonl)])
    assert code == 0
    return path, jsonl


@pytest.fixture(scope="module")
def reference(embedded_reference):
    return embedded_reference  # (tests/conftest.py: loaded once per run)


@torch.no_grad()
def test_every_token_in_the_page_equals_a_full_forward_pass(traced, reference):
    path, _ = traced
    model, tokenizer = reference
    data = page_data(path.read_text(encoding="utf-8"))
    tokens = data["tokens"]
    prompt_ids = tokenizer(PROMPT)["input_ids"]
    ids = [t["id"] for t in tokens]
    assert ids[: len(prompt_ids)] == prompt_ids and len(ids) == len(prompt_ids) + N_NEW
    logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    assert tokens[0]["prob"] is None and tokens[0]["rank"] is None and tokens[0]["top"] == []
    for i in range(1, len(ids)):
        row, t = logp[i - 1], tokens[i]
        assert t["prob"] == pytest.approx(math.exp(float(row[ids[i]])), abs=TOL)
        assert t["rank"] == int((row > row[ids[i]]).sum()) + 1
        assert t["entropy"] == pytest.approx(float(-(row.exp() * row).sum()), abs=TOL)
        assert t["surprisal"] == pytest.approx(-float(row[ids[i]]), abs=TOL)
        top = torch.topk(row, TOP_K)
        assert [c["id"] for c in t["top"]] == top.indices.tolist()
        for c, value in zip(t["top"], top.values.tolist()):
            assert c["p_base"] == pytest.approx(math.exp(value), abs=TOL)
        # The generated tokens were chosen greedily: p_final is 1 for the argmax, 0 else.
        if i >= len(prompt_ids):
            assert [c["p_final"] for c in t["top"]] == [1.0] + [0.0] * (TOP_K - 1)
            assert t["origin"] == "sampled"
        else:
            assert t["p_final"] is None and t["origin"] == "prompt"


@torch.no_grad()
def test_tracked_curve_and_surprisal_plot_from_the_model(traced, reference):
    path, _ = traced
    model, tokenizer = reference
    html = path.read_text(encoding="utf-8")
    ids = [t["id"] for t in page_data(html)["tokens"]]
    (the,) = tokenizer(" the", add_special_tokens=False)["input_ids"]
    probs = torch.softmax(model(torch.tensor([ids])).logits[0].double(), -1)[:, the]
    # The tracked plot has a point per position 1..n (p_{i-1}[the]) and one for the next token.
    points = re.findall(r"<title>␣the at (\d+): ([0-9.e+-]+)</title>", html)
    assert [int(i) for i, _ in points] == list(range(1, len(ids) + 1))
    for (i, value), expected in zip(points, probs.tolist()):
        assert float(value) == pytest.approx(expected, rel=1e-3, abs=1e-6)
    assert 'id="plot-surprisal"' in html and 'id="plot-tracked"' in html
    assert len(re.findall(r"<title>surprisal \(nats\) at \d+", html)) == len(ids) - 1


def test_the_page_is_self_contained_and_shows_whitespace_as_the_app(traced):
    path, _ = traced
    html = path.read_text(encoding="utf-8")
    # Nothing to fetch: no external scripts, styles, images or fonts (the SVG namespace
    # is a name, not a request).
    assert not re.search(r"""(src|href)\s*=|@import|url\(|<link""", html)
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}
    data = page_data(html)
    texts = [s["text"] for s in data["segments"]]
    assert "␣upon" in texts and "↵" in "".join(texts) and "⇥" in "".join(texts)
    assert "😀" in "".join(texts)  # byte tokens grouped into their character, as the app does
    assert all(set(s["colours"]) == {"probability", "entropy"} for s in data["segments"])
    assert "<b>probability</b>" in html and "no prediction" in html  # the legend
    assert "model</dt><dd>embedded</dd>" in html and "<dt>date</dt>" in html
    assert not list(path.parent.glob(".*.te-tmp"))  # written atomically, nothing left over


def test_tree_html_outline_holds_every_node(tmp_path):
    page, tree_json = tmp_path / "tree.html", tmp_path / "tree.json"
    code, _ = run_cli(["tree", "--model", "embedded", "--prompt", "Once upon a time", "--max-nodes", "12",
                       "--json", str(tree_json), "--html", str(page), "--html-layer", "entropy"])
    assert code == 0
    tree = json.loads(tree_json.read_text(encoding="utf-8"))
    html = page.read_text(encoding="utf-8")
    nodes, leaves, stack = 0, 0, list(tree["children"])
    while stack:
        node = stack.pop()
        nodes += 1
        leaves += not node["children"]
        stack += node["children"]
    assert html.count("<details open>") == nodes - leaves
    assert html.count('<div class="leaf">') == leaves
    assert html.count('<option value="entropy" selected>') == 1


def test_an_unwritable_html_path_is_refused_before_the_model_loads(tmp_path, capsys):
    code = cli.main(["trace", "--model", "no/such-model", "--prompt", "x",
                     "--html", str(tmp_path / "missing-folder" / "deeper" / "a.html")])
    err = capsys.readouterr().err
    assert code == 2 and "Could not write " in err and "deeper does not exist." in err
    assert "no/such-model" not in err


def test_the_report_needs_no_textual():
    code = ("import sys, explorer.report, explorer.report.build; "
            "assert 'textual' not in sys.modules, 'textual imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


def test_the_apps_report_of_the_explorer_core(tmp_path):
    """What the app's key writes: the shown prompt with its origins, the pins' curves and
    the next token's p_final, here softmax(z / 0.8) of the model's own logits."""
    import numpy as np
    from app_fixtures import embedded_engine

    from explorer.report.session import write_explorer_report
    from explorer.sampling import SamplingConfig
    from explorer.session.headless import Headless

    engine = embedded_engine()
    knobs = {"temperature": 0.8, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "repetition_penalty": 1.0, "seed": 3}
    run = Headless(engine, SamplingConfig(values=knobs))
    core = run.open(engine.encode("Once upon a time"))
    core.append(0)
    run.settle()
    core.pin_text(" the")
    run.settle()
    path = write_explorer_report(core, tmp_path, layer="entropy")
    html = path.read_text(encoding="utf-8")
    data = page_data(html)
    ids = core.book.current.ids
    assert [t["id"] for t in data["tokens"]] == list(ids)
    assert [t["origin"] for t in data["tokens"]][-2:] == ["prompt", "picked"]
    assert "<dt>sampler</dt><dd>T 0.8" in html and 'id="plot-tracked"' in html
    with torch.no_grad():
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED_MODEL_DIR), dtype=torch.float32).eval()
        z = model(torch.tensor([ids])).logits[0, -1].double().numpy()
    p_final = np.exp(z / 0.8 - np.logaddexp.reduce(z / 0.8))
    cells = re.findall(r"<tr><td>[^<]*</td><td>([0-9.]+)</td><td>([0-9.]+)</td><td>(\d+)</td></tr>", html)
    assert len(cells) == 10  # the next token's candidates, each with p_final
    for cell in cells:
        assert float(cell[1]) == pytest.approx(p_final[int(cell[2])], abs=1e-4)
