"""`trace --attribution METHOD` on the embedded model: each JSONL line's `attribution` equals
a plain torch.autograd gradient of log p(token | the ids before it) with respect to the
input embeddings (within 1e-5), computed on a separately loaded copy of the model."""

from __future__ import annotations

import json

import pytest
import torch
from app_fixtures import requires_model

from explorer import cli
from explorer.config import EMBEDDED_MODEL_DIR

pytestmark = requires_model
PROMPT = "The quick brown fox jumps over the lazy"


@pytest.fixture(scope="module")
def reference():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED_MODEL_DIR), dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))


def autograd(model, ids, target):
    with torch.no_grad():
        e = model.get_input_embeddings()(torch.tensor([ids])).float()
    e.requires_grad_(True)
    f = torch.log_softmax(model(inputs_embeds=e).logits[0, -1].float(), -1)[target]
    (grad,) = torch.autograd.grad(f, e)
    return e.detach()[0], grad[0]


def trace(tmp_path, capsys, *flags):
    path = tmp_path / "t.jsonl"
    code = cli.main(["trace", "--model", "embedded", "--prompt", PROMPT, "--max-new-tokens", "4",
                     "--jsonl", str(path), *flags])
    out = capsys.readouterr()
    return code, out, (path.read_text().splitlines() if path.exists() else [])


@pytest.mark.parametrize("method", ["saliency", "input_x_gradient"])
def test_attribution_lines_equal_autograd(tmp_path, capsys, reference, method):
    model, tok = reference
    code, out, raw = trace(tmp_path, capsys, "--attribution", method)
    assert code == 0, out.err
    lines = [json.loads(line) for line in raw]
    ids = tok(PROMPT)["input_ids"]
    assert len(lines) == 4
    for line in lines:
        before = ids + [x["token_id"] for x in lines[: line["step"] - 1]]
        assert line["position"] == len(before)
        e, grad = autograd(model, before, line["token_id"])
        want = grad.norm(dim=-1) if method == "saliency" else (e * grad).sum(dim=-1)
        got = torch.tensor(line["attribution"])
        assert got.shape == want.shape  # one value per position before the token
        assert torch.allclose(got, want, atol=1e-5, rtol=0), (got - want).abs().max()


def test_integrated_gradients_lines_and_steps_flag(tmp_path, capsys):
    code, out, raw = trace(tmp_path, capsys, "--attribution", "integrated_gradients",
                           "--attribution-steps", "4", "--max-new-tokens", "2")
    assert code == 0, out.err
    lines = [json.loads(line) for line in raw]
    assert [len(x["attribution"]) for x in lines] == [lines[0]["position"], lines[0]["position"] + 1]


def test_bad_attribution_flags_are_one_sentence(tmp_path, capsys):
    code = cli.main(["trace", "--model", "embedded", "--prompt", PROMPT, "--attribution", "saliency"])
    err = capsys.readouterr().err
    assert code == 2 and "give --jsonl PATH too" in err and err.count("\n") == 1
    code = cli.main(["trace", "--model", "embedded", "--prompt", PROMPT, "--jsonl",
                     str(tmp_path / "x.jsonl"), "--attribution", "gradcam"])
    err = capsys.readouterr().err
    assert code == 2 and "invalid choice" in err and not (tmp_path / "x.jsonl").exists()
    code = cli.main(["trace", "--model", "embedded", "--prompt", PROMPT, "--jsonl",
                     str(tmp_path / "x.jsonl"), "--attribution", "saliency", "--attribution-steps", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "--attribution-steps must be between 1 and 4096" in err


def test_on_a_server_attribution_is_unavailable(tmp_path, capsys, llama_url):
    path = tmp_path / "s.jsonl"
    code = cli.main(["trace", "--server", llama_url, "--prompt", PROMPT, "--jsonl", str(path),
                     "--attribution", "saliency"])
    err = capsys.readouterr().err
    assert code == 2 and "attention) is unavailable on this backend (llama.cpp)" in err
    assert not path.exists()
