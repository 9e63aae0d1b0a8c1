"""Habits of the tools we replace (issue 26), through the command line on the embedded
model, checked against transformers itself (one plain full forward pass) and against the
trace's own JSONL: Token Tracer's --seed / --top-k -1 / --max-print-tokens / --base-url and
per-step id check, vLLM's --track-id / --tracked-summary, Gemma's --format gemma files for
trace and tree, and next-token-visualization's `reliable` preset."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from app_fixtures import requires_model

from conftest import full_logprobs

from explorer import cli

pytestmark = requires_model
PROMPT = "Once upon a time, there was a"
TOL = 1e-4


@pytest.fixture(scope="module")
def reference(embedded_reference):
    return embedded_reference  # (tests/conftest.py: loaded once per run)


logprobs_of = full_logprobs  # one plain forward pass (tests/conftest.py)


def run(tmp_path, capsys, *flags, name="t.jsonl", code=0):
    path = tmp_path / name
    got = cli.main(["trace", "--model", "embedded", "--prompt", PROMPT, "--jsonl", str(path), *flags])
    out = capsys.readouterr()
    assert got == code, out.err
    lines = [json.loads(line) for line in path.read_text().splitlines()] if code == 0 else None
    return lines, out.out, out.err


def refused(capsys, *flags) -> str:
    code = cli.main(["trace", "--model", "embedded", "--prompt", PROMPT, *flags])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_a_seed_alone_samples_from_the_models_settings_and_repeats(tmp_path, capsys):
    flags = ("--max-new-tokens", "16")
    first, report, _ = run(tmp_path, capsys, *flags, "--seed", "42", name="a.jsonl")
    again, _, _ = run(tmp_path, capsys, *flags, "--seed", "42", name="b.jsonl")
    greedy, greedy_report, _ = run(tmp_path, capsys, *flags, name="c.jsonl")
    ids = [line["token_id"] for line in first]
    assert ids == [line["token_id"] for line in again]
    assert ids != [line["token_id"] for line in greedy]
    # The embedded model's generation_config says do_sample false: the seed turns it on at
    # transformers' temperature 1 and its top-k 50, and the settings line says so.
    assert "decoding T 1 · top-k 50 · seed 42 (the model's generation settings, sampling on by --seed)" in report
    assert "decoding greedy," in greedy_report
    assert all(line["logprob_final"] is not None for line in first)


def test_top_k_minus_one_is_off(tmp_path, capsys):
    flags = ("--max-new-tokens", "10", "--temperature", "1", "--seed", "3")
    off, report, _ = run(tmp_path, capsys, *flags, "--top-k", "-1", name="a.jsonl")
    zero, _, _ = run(tmp_path, capsys, *flags, "--top-k", "0", name="b.jsonl")
    assert [(line["token_id"], line["logprob_final"]) for line in off] == \
        [(line["token_id"], line["logprob_final"]) for line in zero]
    assert "top-k" not in report.splitlines()[1]  # off: not listed among the knobs
    err = refused(capsys, "--top-k", "-2")
    assert "Top-k must be 0 or -1 (off) or more, not '-2'" in err


def test_report_shows_ids_check_logprob_and_percent_per_step(tmp_path, capsys, reference):
    _, tok = reference
    lines, report, _ = run(tmp_path, capsys, "--max-new-tokens", "8", "--top-logprobs", "4")
    blocks = report.split("\nstep ")[1:]
    assert len(blocks) == 8
    for line, block in zip(lines, blocks):
        tid, lp = line["token_id"], line["logprob"]
        alone = tok.encode(tok.decode([tid]), add_special_tokens=False)  # independent
        mark = "✓" if alone == [tid] else f"✗ (actual: {tid})"
        head = block.splitlines()[0]
        assert f"id {tid}  ids=[{', '.join(map(str, alone))}] {mark}  logprob {lp:.4f}  " \
               f"{100 * math.exp(lp):.2f}%" in head
        for k, (c, row) in enumerate(zip(line["top"], block.splitlines()[1:]), 1):
            assert row.strip().startswith(f"{k}. ")
            assert f"logprob {c['logprob']:.4f}" in row and f"{100 * math.exp(c['logprob']):.2f}%" in row
            assert f"id {c['token_id']}" in row


def test_max_print_tokens_shows_the_first_steps_and_keeps_every_line(tmp_path, capsys):
    lines, report, _ = run(tmp_path, capsys, "--max-new-tokens", "6", "--max-print-tokens", "2")
    assert len(lines) == 6 and report.count("\nstep ") == 2
    assert "(4 more steps not shown: --max-print-tokens 2)" in report
    assert "id check: ok" in report
    assert "--max-print-tokens must be 0 (all) or more, not -1." in refused(capsys, "--max-print-tokens", "-1")


def test_base_url_is_the_server_flag():
    args = cli.parse_args(["trace", "--prompt", "x", "--base-url", "http://127.0.0.1:8000/v1"])
    assert args.server == "http://127.0.0.1:8000/v1"
    assert cli.parse_args(["--base-url", "http://h:1"]).server == "http://h:1"


def test_tracked_summary_equals_a_full_forward_pass(tmp_path, capsys, reference):
    model, tok = reference
    summary = tmp_path / "tracked.json"
    lines, report, _ = run(tmp_path, capsys, "--max-new-tokens", "10", "--track-id", "5",
                           "--track-id", "8191", "--track", " the", "--track-id", "5",
                           "--tracked-summary", str(summary))
    got = json.loads(summary.read_text())
    the = tok.encode(" the", add_special_tokens=False)
    assert list(got) == ["tracked_logprobs"]
    assert list(got["tracked_logprobs"]) == [str(t) for t in the + [5, 8191]]  # --track, then ids
    prompt = tok(PROMPT)["input_ids"]
    ids = prompt + [line["token_id"] for line in lines]
    want = logprobs_of(model, ids)
    for key, series in got["tracked_logprobs"].items():
        assert len(series) == len(lines)
        for step, lp in enumerate(series):
            assert abs(lp - float(want[len(prompt) - 1 + step, int(key)])) < TOL
    # The report shows them per step too.
    first = report.split("\nstep ")[1]
    assert re.search(rf"tracked \S+  id 8191  logprob {got['tracked_logprobs']['8191'][0]:.4f}", first)
    # The JSONL's tracked fields agree.
    assert all(abs(line["tracked"]["5"] - got["tracked_logprobs"]["5"][n]) < 1e-6 for n, line in enumerate(lines))


def test_track_id_refusals(capsys):
    assert "--track-id 8192 is outside the vocabulary (8192 tokens: 0 to 8191)." in refused(capsys, "--track-id", "8192")
    assert "give --track-id ID or --track TEXT too" in refused(capsys, "--tracked-summary", "/tmp/x.json")
    assert "--track-id must be a token id (0 or more), not -3." in refused(capsys, "--track-id", "-3")


def test_gemma_trace_file_matches_the_traces_own_numbers(tmp_path, capsys, reference):
    model, tok = reference
    flags = ("--max-new-tokens", "9", "--top-logprobs", "5")
    ours, _, _ = run(tmp_path, capsys, *flags, name="ours.jsonl")
    gemma_lines, _, _ = run(tmp_path, capsys, *flags, "--format", "gemma", name="gemma.jsonl")
    assert len(gemma_lines) == 1  # one line per response
    line = gemma_lines[0]
    assert list(line) == ["prompt", "response", "data"]
    completion = [o["token_id"] for o in ours]
    assert line["prompt"] == PROMPT
    assert line["response"] == tok.decode(completion)
    assert len(line["data"]) == len(ours)
    prompt = tok(PROMPT)["input_ids"]
    want = logprobs_of(model, prompt + completion)
    for n, (entry, o) in enumerate(zip(line["data"], ours)):
        assert list(entry) == ["token", "logprob", "prob", "other_tokens"]
        assert entry["token"] == o["token"] == tok.decode([o["token_id"]])
        assert entry["logprob"] == pytest.approx(o["logprob"], abs=1e-6)
        assert abs(entry["logprob"] - float(want[len(prompt) - 1 + n, o["token_id"]])) < TOL
        assert entry["prob"] == pytest.approx(100 * math.exp(o["logprob"]), rel=1e-6)
        others = [c for c in o["top"] if c["token_id"] != o["token_id"]]
        assert [c["token"] for c in entry["other_tokens"]] == [c["token"] for c in others]
        for c, want_c in zip(entry["other_tokens"], others):
            assert list(c) == ["token", "logprob", "prob"]
            assert c["logprob"] == pytest.approx(want_c["logprob"], abs=1e-6)
            assert c["prob"] == pytest.approx(100 * math.exp(want_c["logprob"]), rel=1e-6)


def test_gemma_tree_file_matches_the_tree(tmp_path, capsys, reference):
    model, tok = reference
    flags = ["tree", "--model", "embedded", "--prompt", PROMPT, "--max-nodes", "12", "--t-min", "0.05"]
    assert cli.main([*flags, "--json", str(tmp_path / "ours.json")]) == 0
    assert cli.main([*flags, "--json", str(tmp_path / "g.json"), "--format", "gemma"]) == 0
    capsys.readouterr()
    ours = json.loads((tmp_path / "ours.json").read_text())
    gemma = json.loads((tmp_path / "g.json").read_text())
    assert list(gemma) == ["metadata", "tree"]
    assert gemma["metadata"] == {"prompt": PROMPT, "parameters": {
        "min_branch_threshold": 0.05, "max_branch_threshold": ours["settings"]["t_max"],
        "soft_queue_limit": ours["settings"]["q_limit"], "candidate_threshold": 0.05,
        "max_depth": ours["settings"]["max_depth"], "max_completed_paths": None}}
    root = gemma["tree"]
    assert (root["text"], root["prob"], root["cumulative_prob"], root["token_id"], root["depth"],
            root["is_finished"]) == (PROMPT, 1.0, 1.0, None, 0, False)
    prompt = tok(PROMPT)["input_ids"]
    checked = 0
    stack = [(root, {"children": ours["children"]}, ())]
    while stack:
        g, o, path = stack.pop()
        assert len(g["children"]) == len(o["children"])
        # Candidates: every token above candidate_threshold after this path (a full
        # forward pass), for each node the search expanded.
        if g["children"]:
            p = logprobs_of(model, prompt + list(path))[-1].exp()
            above = [(int(t), float(p[t])) for t in torch.nonzero(p > 0.05).flatten().tolist()]
            above.sort(key=lambda x: -x[1])
            assert [c["token_id"] for c in g["candidates"]] == [t for t, _ in above]
            for c, (t, pt) in zip(g["candidates"], above):
                assert abs(c["prob"] - pt) < TOL and c["text"] == tok.decode([t])
            checked += 1
        else:
            assert g["candidates"] == []
        for gc, oc in zip(g["children"], o["children"]):
            assert list(gc) == ["text", "prob", "cumulative_prob", "token_id", "depth",
                                "is_finished", "candidates", "children"]
            assert gc["text"] == oc["token"] and gc["token_id"] == oc["token_id"]
            assert gc["prob"] == pytest.approx(oc["p"]) and gc["depth"] == oc["depth"]
            assert gc["cumulative_prob"] == pytest.approx(math.exp(oc["cum_logprob"]))
            assert gc["is_finished"] == (oc["end"] in ("eos", "stop", "depth", "context"))
            stack.append((gc, oc, path + (oc["token_id"],)))
    assert checked >= 3


def test_reliable_preset(tmp_path, capsys):
    _, report, _ = run(tmp_path, capsys, "--max-new-tokens", "3", "--preset", "reliable", "--seed", "1")
    assert "decoding T 0.25 · top-p 0.7 · rep 1.1 · seed 1," in report


def prompt_ids_of(report: str) -> list[int]:
    line = next(s for s in report.splitlines() if s.startswith("prompt ids  ["))
    return [int(t) for t in line[len("prompt ids  ["):line.index("]")].split(", ")]


def test_input_opens_gemma_files_as_prompts(tmp_path, capsys, reference):
    _, tok = reference
    ours, _, _ = run(tmp_path, capsys, "--max-new-tokens", "6", name="ours.jsonl")
    run(tmp_path, capsys, "--max-new-tokens", "6", "--format", "gemma", name="gemma.jsonl")
    again = cli.main(["trace", "--model", "embedded", "-i", str(tmp_path / "gemma.jsonl"),
                      "--max-new-tokens", "1"])
    out = capsys.readouterr()
    assert again == 0, out.err
    # The response's tokens come back as the same ids after the prompt's.
    assert prompt_ids_of(out.out) == tok(PROMPT)["input_ids"] + [o["token_id"] for o in ours]
    tree = tmp_path / "tree.json"
    assert cli.main(["tree", "--model", "embedded", "--prompt", PROMPT, "--max-nodes", "4",
                     "--json", str(tree), "--format", "gemma"]) == 0
    capsys.readouterr()
    assert cli.main(["trace", "--model", "embedded", "-i", str(tree), "--max-new-tokens", "1"]) == 0
    assert prompt_ids_of(capsys.readouterr().out) == tok(PROMPT)["input_ids"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "x", "response": "y", "data": [{"logprob": 1}]}) + "\n")
    code = cli.main(["trace", "--model", "embedded", "-i", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "is not a Gemma logprobs file" in err and err.count("\n") == 1
