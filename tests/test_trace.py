"""`trace` on the embedded model, end to end through the command line, checked against
transformers itself: greedy `generate` for the chosen ids, and one plain full forward pass
for every logprob, rank, entropy and top-K candidate in the JSONL."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas
import pytest
import torch
from app_fixtures import requires_model

from explorer import cli
from explorer.config import EMBEDDED_MODEL_DIR

pytestmark = requires_model

TOL = 1e-4
PROMPTS = ["The", "Once upon a time", "def add(a, b):\n"]
N_NEW, TOP_K = 24, 7


@pytest.fixture(scope="module")
def reference_model():
    """The embedded model loaded by transformers alone: the independent reference."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED_MODEL_DIR), dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))


def run_trace(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(["trace", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """(prompt, report, jsonl path) per prompt, each from one real `trace` run."""
    folder = tmp_path_factory.mktemp("traces")
    done = []
    for n, prompt in enumerate(PROMPTS):
        path = folder / f"trace{n}.jsonl"
        with pytest.MonkeyPatch.context() as mp:
            out = io.StringIO()
            mp.setattr(sys, "stdout", out)
            code = cli.main(["trace", "--prompt", prompt, "--max-new-tokens", str(N_NEW),
                             "--top-logprobs", str(TOP_K), "--jsonl", str(path)])
        assert code == 0
        done.append((prompt, out.getvalue(), path))
    return done


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_chosen_ids_equal_greedy_generate(traces, reference_model):
    model, tokenizer = reference_model
    for prompt, _, path in traces:
        ids = tokenizer(prompt)["input_ids"]
        out = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=N_NEW)
        expected = out[0, len(ids):].tolist()
        assert [line["token_id"] for line in read_lines(path)] == expected, prompt


@torch.no_grad()
def test_every_line_equals_a_full_forward_pass(traces, reference_model):
    model, tokenizer = reference_model
    for prompt, _, path in traces:
        lines = read_lines(path)
        prompt_ids = tokenizer(prompt)["input_ids"]
        ids = prompt_ids + [line["token_id"] for line in lines]
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
        for step, line in enumerate(lines, 1):
            pos = len(prompt_ids) + step - 1
            row = logp[pos - 1]  # the distribution that predicted position pos
            assert line["step"] == step and line["position"] == pos
            assert line["token"] == tokenizer.decode([ids[pos]])
            assert line["logprob"] == pytest.approx(float(row[ids[pos]]), abs=TOL)
            assert line["rank"] == int((row > row[ids[pos]]).sum()) + 1
            assert line["entropy"] == pytest.approx(float(-(row.exp() * row).sum()), abs=TOL)
            top = torch.topk(row, TOP_K)
            assert [c["token_id"] for c in line["top"]] == top.indices.tolist()
            for c, value in zip(line["top"], top.values.tolist()):
                assert c["logprob"] == pytest.approx(value, abs=TOL)
                assert c["token"] == tokenizer.decode([c["token_id"]])


def test_pandas_reads_the_jsonl(traces):
    _, _, path = traces[0]
    frame = pandas.read_json(path, lines=True)
    assert len(frame) == N_NEW
    assert {"step", "token_id", "token", "logprob", "rank", "entropy", "top"} <= set(frame.columns)
    assert frame["step"].tolist() == list(range(1, N_NEW + 1))
    assert all(len(top) == TOP_K for top in frame["top"])


def test_report_lists_settings_ids_steps_and_id_check(traces):
    prompt, report, path = traces[0]
    lines = read_lines(path)
    assert "model       embedded (LlamaForCausalLM" in report
    assert "decoding greedy, max-new-tokens 24, top-logprobs 7" in report
    assert f"prompt      {json.dumps(prompt)}" in report
    assert "completion ids  [" + ", ".join(str(line["token_id"]) for line in lines) + "]" in report
    assert report.count("\nstep ") == N_NEW
    first = lines[0]
    assert f"rank 1  id {first['token_id']}" in report
    assert "id check: ok" in report


def test_id_check_mismatch_on_a_non_canonical_prompt(tmp_path, capsys):
    # " mod" + "ule" re-tokenises as the single token " module" (587).
    saved = tmp_path / "split.json"
    saved.write_text(json.dumps({"model": "embedded", "token_ids": [330, 948, 2821], "text": "The module"}))
    code, out, err = run_trace(["-i", str(saved), "--max-new-tokens", "3"], capsys)
    assert code == 0, err
    assert "prompt ids  [330, 948, 2821]" in out
    check = out[out.index("id check"):]
    assert re.match(r"id check: \d+ mismatch(es)?: ", check)
    assert "positions 1-2 (prompt): generated 948:␣mod 2821:ule  ->  re-tokenised 587:␣module" in check


def test_too_many_new_tokens_for_the_context():
    # A real process, as a user runs it: nothing but the sentence reaches stderr.
    done = subprocess.run([sys.executable, "main.py", "trace", "--prompt", "The", "--max-new-tokens", "5000"],
                          cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("token-explorer trace: The prompt has 1 token and embedded supports 1024, "
                           "so at most 1023 new tokens fit, not 5000.\n")


def test_id_check_merge_across_the_prompt_completion_boundary():
    from app_fixtures import embedded_engine

    from explorer.core.id_check import check_ids

    # "The mod" + "ule": the text "The module" re-tokenises with " module" as one token.
    check = check_ids(embedded_engine(), "The mod", [330, 948], [2821])
    assert [(m.start, m.end, m.generated, m.retokenised) for m in check.mismatches] == [
        (1, 3, (948, 2821), (587,))]
