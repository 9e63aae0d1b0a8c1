"""Two models on the same tokens (explorer.compare), checked against an independent
computation: two plain full forward passes, log-softmax in float64, KL summed directly."""

from __future__ import annotations

import math
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest
import torch

from explorer.compare import compare_models, vocabulary_mismatch
from explorer.compare.kl import kl_bound
from explorer.config import ModelSettings
from explorer.engine import Engine

TOL = 1e-4
STORY = ("Once upon a time, there was a little girl who lived in a small house near the woods. "
         "Every day she walked to the river with her dog, and one morning")


def reference(model_a, model_b, ids):
    """Per row i (after position i): KL(p_A || p_B), ln p_A/ln p_B of t_{i+1}, top-1s."""
    with torch.no_grad():
        la = torch.log_softmax(model_a(torch.tensor([ids])).logits[0].double(), -1)
        lb = torch.log_softmax(model_b(torch.tensor([ids])).logits[0].double(), -1)
    kl = (la.exp() * (la - lb)).sum(-1)
    return kl.numpy(), la, lb


def check_against_reference(got, model_a, model_b, ids):
    kl, la, lb = reference(model_a, model_b, ids)
    assert got.positions[0].kl_ab is None and got.positions[0].logprob_a is None
    worst = 0.0
    for i in range(1, len(ids)):
        p = got.positions[i]
        assert (p.position, p.token_id) == (i, ids[i])
        worst = max(worst, abs(p.kl_ab - kl[i - 1]), abs(p.logprob_a - float(la[i - 1, ids[i]])),
                    abs(p.logprob_b - float(lb[i - 1, ids[i]])))
        assert p.top1_a == int(la[i - 1].argmax()) and p.top1_b == int(lb[i - 1].argmax())
    worst = max(worst, abs(got.next_kl - kl[-1]))
    assert worst < TOL, worst
    return kl


def test_exact_kl_matches_two_full_forward_passes(make_engine, tokenizer):
    # Different chunk sizes on the two sides: the row blocks must line up anyway.
    a = make_engine("llama", seed=0, prefill_chunk=5)
    b = make_engine("llama", seed=1, prefill_chunk=7)
    ids = tokenizer.encode(STORY)[:40]
    got = compare_models(a, b, ids)
    assert not got.kl_bound
    kl = check_against_reference(got, a.model, b.model, ids)
    assert kl.min() > 0.01  # two different models: a real divergence was checked
    summary = got.summary()
    assert summary["max_kl"] == pytest.approx(max(kl[:-1]), abs=TOL)
    assert summary["max_kl_position"] == int(np.argmax(kl[:-1])) + 1
    assert summary["mean_kl"] == pytest.approx(float(np.mean(kl[:-1])), abs=TOL)


def test_same_model_against_itself_is_zero_and_agrees(make_engine, tokenizer):
    a = make_engine("qwen2", seed=3)
    ids = tokenizer.encode(STORY)[:30]
    got = compare_models(a, a, ids)
    assert all(abs(p.kl_ab) < 1e-6 for p in got.scored())
    summary = got.summary()
    assert summary["top1_agreement"] == 1.0 and summary["top1_agree"] == len(ids) - 1
    assert summary["max_kl"] < 1e-6


def test_different_vocabularies_are_refused_in_one_sentence(make_engine):
    tiny = make_engine("llama")
    embedded = Engine.load(ModelSettings(name="embedded", device="cpu"), influence=False)
    why = vocabulary_mismatch(tiny, embedded)
    assert why and why.count(".") == 1 and "do not share a tokenizer" in why
    assert vocabulary_mismatch(tiny, tiny) is None


def test_bound_is_below_the_exact_kl_on_truncated_lists():
    rng = np.random.default_rng(0)
    for _ in range(50):
        za, zb = rng.normal(0, 3, 500), rng.normal(0, 3, 500)
        la, lb = za - np.logaddexp.reduce(za), zb - np.logaddexp.reduce(zb)
        exact = float((np.exp(la) * (la - lb)).sum())
        top_a = {int(t): float(la[t]) for t in np.argsort(-la)[:20]}
        full_b = {t: float(lb[t]) for t in top_a}  # the local side: known everywhere
        assert kl_bound(top_a, full_b) <= exact + 1e-9
        top_b = {int(t): float(lb[t]) for t in np.argsort(-lb)[:20]}
        assert kl_bound(top_a, top_b) <= exact + 1e-9
    same = {1: math.log(0.5), 2: math.log(0.25)}
    assert kl_bound(same, same) == pytest.approx(0.0, abs=1e-12)


def fp32_and_bf16(name: str):
    """The named model loaded twice, fp32 and bf16 (model A and model B)."""
    fp32 = Engine.load(ModelSettings(name=name, device="cpu"), influence=False)
    bf16 = Engine.load(ModelSettings(name=name, device="cpu", dtype="bfloat16"), influence=False)
    return fp32, bf16


def compare_fp32_with_bf16(pair, text: str):
    """compare_models of the pair on `text`, checked against two full forward passes; bf16
    moves the numbers a little, not the model (0 < max KL < 1)."""
    fp32, bf16 = pair
    assert vocabulary_mismatch(fp32, bf16) is None
    ids = fp32.encode(text)
    got = compare_models(fp32, bf16, ids)
    kl = check_against_reference(got, fp32.model, bf16.model, ids)
    assert 0 < kl.max() < 1.0
    return got


@pytest.fixture(scope="module")
def embedded_pair():
    return fp32_and_bf16("embedded")


def test_embedded_model_fp32_against_bf16(embedded_pair):
    got = compare_fp32_with_bf16(embedded_pair, STORY)
    assert got.summary()["top1_agreement"] > 0.8
