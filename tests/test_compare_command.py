"""`main.py compare`: one JSONL line per position and a summary line, refusals in one
sentence before any model loads, and --max-new-tokens (A greedy, B scores)."""

from __future__ import annotations

import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pandas as pd
import pytest

from explorer.cli import main

PROMPT = "Once upon a time, there was a little girl who"
FIELDS = {"position", "token_id", "token", "logprob_a", "logprob_b", "kl_ab", "top1_a", "top1_b"}


def run(argv, capsys):
    code = main(["compare", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("argv, says", [
    (["--model", "embedded", "--prompt", PROMPT], "Name model B with --compare"),
    (["--model", "embedded", "--compare-dtype", "bfloat16"], "Give a prompt"),
    (["--model", "embedded", "--compare-dtype", "bfloat16", "--prompt", PROMPT,
      "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
    (["--model", "embedded", "--compare-server", "http://127.0.0.1:9", "--compare-dtype",
      "bfloat16", "--prompt", PROMPT], "--compare-dtype applies to a local model B"),
])
def test_bad_input_is_one_sentence_before_loading(argv, says, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert says in err and err.count("\n") == 1


def test_same_model_jsonl_and_greedy_generation(tmp_path, capsys):
    path = tmp_path / "cmp.jsonl"
    code, out, err = run(["--model", "embedded", "--compare", "embedded", "--prompt", PROMPT,
                          "--max-new-tokens", "6", "--jsonl", str(path)], capsys)
    assert code == 0, err
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    rows, summary = pd.DataFrame(lines[:-1]), lines[-1]
    assert FIELDS <= set(rows.columns)
    assert rows["position"].tolist() == list(range(len(rows)))
    assert rows["generated"].sum() == 6
    first, scored = rows.iloc[0], rows.iloc[1:]
    assert first["kl_ab"] is None or pd.isna(first["kl_ab"])
    assert (scored["kl_ab"].abs() < 1e-6).all() and not scored["kl_bound"].any()
    # A generated greedily: each new token is A's top-1 of the distribution before it.
    made = scored[scored["generated"]]
    assert (made["token_id"] == made["top1_a"]).all()
    assert summary["summary"] and summary["top1_agreement"] == 1.0
    assert summary["positions"] == len(rows) - 1 and summary["max_kl"] < 1e-6
    assert "top-1 agreement" in out and "exact over the full vocabulary" in out


def test_html_report_shows_the_kl_along_the_prompt(tmp_path, capsys):
    """`compare --html`: model A's prompt as the report page, the KL along it as a plot whose
    points are the JSONL's kl_ab, the summary beside it, and A's own probabilities."""
    import html
    import math
    import re

    jsonl, page = tmp_path / "cmp.jsonl", tmp_path / "cmp.html"
    code, out, err = run(["--model", "embedded", "--compare-dtype", "bfloat16", "--prompt", PROMPT,
                          "--jsonl", str(jsonl), "--html", str(page)], capsys)
    assert code == 0, err
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rows, summary = lines[:-1], lines[-1]
    text = page.read_text()
    plot = text[text.index('id="plot-kl"'):]
    plot = plot[: plot.index("</svg>")]
    points = {int(i): float(v) for i, v in re.findall(r"at (\d+): ([-+0-9.e]+)</title>", html.unescape(plot))}
    want = {r["position"]: r["kl_ab"] for r in rows if r["kl_ab"] is not None}
    assert points.keys() == want.keys()
    for i, v in want.items():
        assert math.isclose(points[i], v, rel_tol=1e-3, abs_tol=1e-12)
    comparison = text[text.index('id="comparison"'):]
    assert f"<dd>{summary['max_kl_position']}</dd>" in comparison and "bfloat16" in comparison
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', text, re.S).group(1))
    for token, row in zip(data["tokens"][1:], rows[1:]):  # A's p of each token, from the JSONL
        assert token["id"] == row["token_id"]
        assert math.isclose(token["prob"], math.exp(row["logprob_a"]), rel_tol=1e-4)
    assert "src=" not in text and "href=" not in text  # self-contained
