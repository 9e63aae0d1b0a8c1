"""`trace --attribution` at the defaults, checked against separately loaded copies of the
models (plain transformers, plain torch.autograd):

- integrated gradients on the default model (SmolLM2-135M) with the 13-token prompt of
  issue 24: the JSONL line says how it was made (method, baseline, steps, completeness),
  completeness is within 2% of Δ log p, and the scores equal a sum of autograd gradients
  over the points and weights the line names within 1e-3 relative;
- attention on the embedded model: the eager attentions of one full forward pass, within
  1e-5.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from app_fixtures import requires_model

from explorer import cli
from explorer.config import EMBEDDED_MODEL_DIR

from test_attribution_adaptive import reference_ig

pytestmark = requires_model
CAPITALS = "The capital of France is Paris, and the capital of Italy is"


def trace(tmp_path, capsys, *flags):
    path = tmp_path / "t.jsonl"
    code = cli.main(["trace", "--jsonl", str(path), "--max-new-tokens", "1", *flags])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out, [json.loads(line) for line in path.read_text().splitlines()]


def test_integrated_gradients_on_the_default_model_add_up_and_equal_autograd(tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from explorer.engine.builtin_models import local_folder

    report, lines = trace(tmp_path, capsys, "--prompt", CAPITALS,
                          "--attribution", "integrated_gradients", "--temperature", "0")
    folder = local_folder("smollm2")
    ids = AutoTokenizer.from_pretrained(str(folder))(CAPITALS)["input_ids"]
    assert len(ids) == 13
    (line,) = lines
    assert line["attribution_method"] == "integrated_gradients"
    assert line["attribution_baseline"] == "mean-keep-first"
    steps = line["attribution_steps"]
    assert 32 <= steps <= 512 and len(line["attribution_points"]) == steps + 1
    assert abs(line["attribution_completeness"] - 1) <= 0.02
    assert f"took {steps}" in report and "baseline mean-keep-first" in report
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    want, f_e, f_b = reference_ig(model, ids, line["token_id"], line["attribution_points"],
                                  line["attribution_weights"])
    got = np.array(line["attribution"])
    assert abs(got.sum() - (f_e - f_b)) <= 0.02 * abs(f_e - f_b)
    assert line["attribution_completeness"] == pytest.approx(got.sum() / (f_e - f_b), abs=1e-4)
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(got, want, atol=1e-3 * scale, rtol=1e-3)


def test_trace_attention_equals_eager_attentions(tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    report, lines = trace(tmp_path, capsys, "--model", "embedded", "--prompt",
                          "The quick brown fox jumps over the lazy", "--attribution", "attention",
                          "--max-new-tokens", "3")
    model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED_MODEL_DIR), dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    ids = AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))(
        "The quick brown fox jumps over the lazy")["input_ids"]
    assert len(lines) == 3
    for line in lines:
        before = ids + [x["token_id"] for x in lines[: line["step"] - 1]]
        with torch.no_grad():
            out = model(input_ids=torch.tensor([before]), output_attentions=True, use_cache=False)
        want = torch.stack([a[0, :, -1, :] for a in out.attentions]).mean(dim=(0, 1))
        np.testing.assert_allclose(line["attribution"], want.numpy(), atol=1e-5, rtol=0)
        assert (line["attribution_method"], line["attribution_baseline"], line["attribution_steps"],
                line["attribution_completeness"]) == ("attention", None, None, None)
