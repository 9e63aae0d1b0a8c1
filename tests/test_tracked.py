"""Tracked tokens against a plain full forward pass: every position, ranks 1 to thousands,
the lens at the last position, several architectures, chunk sizes that split the prompt."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_model
from transformers import AutoModelForCausalLM

from explorer.backend.errors import Cancelled
from explorer.config import EMBEDDED_MODEL_DIR
from explorer.engine.parts import resolve_parts
from explorer.engine.tracked import track


def reference(model, ids):
    """fp32 log-probs [n, V] and hidden states of one full forward pass, no cache."""
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
    return torch.log_softmax(out.logits[0].float(), -1), out.hidden_states


def reference_ranks(lp: torch.Tensor, tokens: list[int]) -> np.ndarray:
    """Rank by sorting each row (ties broken by id, so compare with a tolerance)."""
    order = torch.argsort(lp, dim=-1, descending=True, stable=True)
    where = torch.argsort(order, dim=-1)  # where[i, v] = 0-based place of v in row i
    return (where[:, tokens] + 1).numpy()


@torch.no_grad()
def reference_lens(model, parts, hidden, tokens):
    rows = []
    for l in range(parts.n_layers):
        logits = parts.lm_head(parts.final_norm(hidden[l][0, -1])).float()
        if parts.softcap:
            logits = torch.tanh(logits / parts.softcap) * parts.softcap
        rows.append(torch.softmax(logits, -1)[tokens])
    return torch.stack(rows).numpy()


@pytest.fixture(scope="module")
def embedded():
    if not (EMBEDDED_MODEL_DIR / "config.json").exists():
        pytest.skip("embedded model not present")
    return AutoModelForCausalLM.from_pretrained(EMBEDDED_MODEL_DIR, dtype=torch.float32).eval()


def test_every_position_any_rank_embedded(embedded):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR)
    text = ("Once upon a time there was a little girl who lived in a village near the forest. "
            "Whenever she went out, the little girl wore a red riding cloak, so everyone in the "
            "village called her Little Red Riding Hood. One morning her mother said to her")
    ids = tok(text)["input_ids"]
    lp, hidden = reference(embedded, ids)
    # Rank 1 at the last position, and tokens of rank ~2,000 and ~7,000 there.
    order = torch.argsort(lp[-1], descending=True).tolist()
    tokens = [order[0], order[1999], order[6999], ids[5]]
    parts = resolve_parts(embedded)
    got = track(embedded, ids, tokens, chunk=16, parts=parts)

    assert got.logprobs.shape == (len(ids), len(tokens))
    assert np.abs(got.logprobs - lp[:, tokens].numpy()).max() < 1e-4
    want_ranks = reference_ranks(lp, tokens)
    assert np.abs(got.ranks - want_ranks).max() <= 1  # ties can only swap neighbours
    assert got.ranks[-1, 0] == 1 and got.ranks[-1, 2] > 6000 and got.ranks.max() > 1000
    assert got.layer_probs.shape == (parts.n_layers + 1, len(tokens))
    assert np.abs(got.layer_probs[:-1] - reference_lens(embedded, parts, hidden, tokens)).max() < 1e-4
    assert np.abs(got.layer_probs[-1] - lp[-1, tokens].exp().numpy()).max() < 1e-5


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2", "gemma2"])
@pytest.mark.parametrize("chunk", [1, 7, 256])
def test_tiny_models_every_position(family, chunk):
    model = tiny_model(family, 320, seed=4)
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 320, size=40).tolist()  # longer than gemma2's sliding window
    lp, hidden = reference(model, ids)
    tokens = [int(torch.argmax(lp[-1])), int(torch.argmin(lp[-1])), 17]
    parts = resolve_parts(model)
    got = track(model, ids, tokens, chunk=chunk, parts=parts)
    assert np.abs(got.logprobs - lp[:, tokens].numpy()).max() < 1e-4
    assert np.abs(got.ranks - reference_ranks(lp, tokens)).max() <= 1
    assert got.ranks[-1, 0] == 1 and got.ranks[-1, 1] >= 300
    assert np.abs(got.layer_probs[:-1] - reference_lens(model, parts, hidden, tokens)).max() < 1e-4
    assert np.allclose(got.probs, np.exp(got.logprobs))


def test_without_parts_no_lens_and_cancel():
    model = tiny_model("llama", 320, seed=1)
    got = track(model, [3, 4, 5], [6], chunk=2)
    assert got.layer_probs is None and got.logprobs.shape == (3, 1)
    calls = []

    def cancel_second():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled, match="cancelled"):
        track(model, list(range(10)), [6], chunk=4, cancelled=cancel_second)


def test_engine_delegate_uses_the_prompt_and_lens(make_engine, tokenizer):
    engine = make_engine("llama", layer_prob=True, prefill_chunk=5)
    ids = engine.encode("The quick brown fox jumps over the lazy dog.")
    engine.sync("k", ids)
    tokens = [c.token_id for c in engine.records("k")[-1].top[:2]] + [len(tokenizer) - 1]
    got = engine.tracked("k", tokens)
    lp, _ = reference(engine.model, ids)
    assert np.abs(got.logprobs - lp[:, tokens].numpy()).max() < 1e-4
    # The lens rows agree with the engine's own lens at the last position.
    assert np.abs(got.layer_probs - engine.layer_probs("k", tokens)).max() < 1e-5
    # The prompt's own state is untouched: syncing again is no model work and the same.
    assert engine.sync("k", ids) == engine.records("k")
    from explorer.backend.errors import BackendError

    with pytest.raises(BackendError, match="outside the vocabulary"):
        engine.tracked("k", [10**9])
