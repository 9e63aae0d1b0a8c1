"""`trace` with the sampler, through the command line on the embedded model, checked
against transformers: greedy `generate` (temperature 0, with a repetition penalty), and
one plain full forward pass for logprob_final and the tracked tokens at every step."""

from __future__ import annotations

import json
import math

import pytest
import torch
from app_fixtures import requires_model

from explorer import cli
from explorer.config import EMBEDDED_MODEL_DIR
from explorer.sampling import NEUTRAL, distributions

pytestmark = requires_model
PROMPT = "Once upon a time, there was a"


@pytest.fixture(scope="module")
def reference():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED_MODEL_DIR), dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))


def run(tmp_path, capsys, *flags, name="t.jsonl"):
    path = tmp_path / name
    code = cli.main(["trace", "--model", "embedded", "--prompt", PROMPT, "--jsonl", str(path), *flags])
    out = capsys.readouterr()
    assert code == 0, out.err
    return [json.loads(line) for line in path.read_text().splitlines()], out.out, out.err


def test_temperature_zero_equals_greedy_generate(tmp_path, capsys, reference):
    model, tok = reference
    lines, report, _ = run(tmp_path, capsys, "--temperature", "0", "--repetition-penalty", "1.3",
                           "--max-new-tokens", "12")
    ids = tok(PROMPT)["input_ids"]
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             do_sample=False, repetition_penalty=1.3, max_new_tokens=12, pad_token_id=0)
    assert [line["token_id"] for line in lines] == out[0, len(ids):].tolist()
    assert all(line["logprob_final"] == 0.0 for line in lines)  # greedy: all mass on the pick
    assert "decoding greedy · rep 1.3" in report


def test_seeded_runs_repeat_and_logprob_final_matches_a_full_forward(tmp_path, capsys, reference):
    model, tok = reference
    flags = ("--temperature", "1.1", "--top-k", "0", "--top-p", "0.6", "--presence-penalty", "0.5",
             "--max-new-tokens", "10", "--top-logprobs", "8")
    first, report, _ = run(tmp_path, capsys, *flags, "--seed", "5", name="a.jsonl")
    again, _, _ = run(tmp_path, capsys, *flags, "--seed", "5", name="b.jsonl")
    other, _, _ = run(tmp_path, capsys, *flags, "--seed", "6", name="c.jsonl")
    tokens = [line["token_id"] for line in first]
    assert tokens == [line["token_id"] for line in again]
    assert tokens != [line["token_id"] for line in other]
    settings = NEUTRAL.with_changes(temperature=1.1, top_p=0.6, presence_penalty=0.5)
    ids = tok(PROMPT)["input_ids"]
    seq = ids + tokens
    with torch.no_grad():
        logits = model(torch.tensor([seq])).logits[0].float()
    excluded = 0
    for n, line in enumerate(first):
        pos = len(ids) + n
        p_final = distributions(logits[pos - 1], seq[:pos], len(ids), settings).p_final
        assert abs(line["logprob_final"] - math.log(p_final[line["token_id"]])) < 1e-4
        for c in line["top"]:
            want = p_final[c["token_id"]]
            if want == 0:
                excluded += 1
                assert c["logprob_final"] is None
            else:
                assert abs(c["logprob_final"] - math.log(want)) < 1e-4
    assert excluded > 0  # top-p 0.6 cut some of the 8 candidates somewhere
    assert "(excluded)" in report and "p_final" in report


def test_tracked_equals_a_full_forward_at_every_step(tmp_path, capsys, reference):
    model, tok = reference
    ids = tok(PROMPT)["input_ids"]
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), -1)
    order = torch.argsort(lp, descending=True).tolist()
    far = tok.decode([order[3000]])  # a token of rank ~3,000 after the prompt
    lines, _, err = run(tmp_path, capsys, "--track", " the", "--track", far, "--max-new-tokens", "8")
    tracked = tok(" the", add_special_tokens=False)["input_ids"] + tok(far, add_special_tokens=False)["input_ids"]
    seq = ids + [line["token_id"] for line in lines]
    with torch.no_grad():
        full = torch.log_softmax(model(torch.tensor([seq])).logits[0].float(), -1)
    for n, line in enumerate(lines):
        assert set(line["tracked"]) == {str(t) for t in tracked}
        for t in tracked:
            assert abs(line["tracked"][str(t)] - float(full[len(ids) + n - 1, t])) < 1e-4
    ranks = (full[len(ids) - 1] > full[len(ids) - 1, tracked[-1]]).sum() + 1
    assert ranks > 1000


def test_chat_and_bad_track(tmp_path, capsys):
    lines, report, _ = run(tmp_path, capsys, "--chat", "--system", "Be brief.", "--max-new-tokens", "3")
    assert 'prompt      "<|im_start|>system\\nBe brief.<|im_end|>' in report
    code = cli.main(["trace", "--model", "embedded", "--prompt", PROMPT, "--track", ""])
    err = capsys.readouterr().err
    assert code == 2 and err.splitlines()[-1] == "token-explorer trace: --track '' gives no tokens."
    code = cli.main(["trace", "--model", "embedded", "--prompt", PROMPT, "--top-p", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "Top-p must be above 0" in err
