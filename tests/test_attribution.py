"""Attribution (saliency, input x gradient, integrated gradients) against plain torch.

The references here use torch.autograd directly on the model's own input embeddings (and,
for integrated gradients, numpy's Gauss-Legendre nodes), never captum, so they check the
engine's use of captum rather than repeat it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.backend import Cancelled, Unavailable
from explorer.backend.types import ATTRIBUTION_METHODS
from explorer.engine import Engine

from conftest import tiny_model

FAMILIES = ["llama", "qwen2", "gpt2", "gemma2"]
TEXT = "The quick brown fox jumps over the lazy"


def reference_grad(model, ids, target, embeds=None):
    """f = log p(target) after the last position and df/de, with plain autograd in fp32."""
    if embeds is None:
        with torch.no_grad():
            embeds = model.get_input_embeddings()(torch.tensor([ids])).float()
    e = embeds.detach().clone().requires_grad_(True)
    logits = model(inputs_embeds=e.to(model.dtype), use_cache=False).logits
    f = torch.log_softmax(logits[0, -1].float(), dim=-1)[target]
    (grad,) = torch.autograd.grad(f, e)
    return float(f.detach()), e.detach(), grad


def prepared(make_engine, tokenizer, family, **kwargs):
    engine = make_engine(family, **kwargs)
    ids = engine.encode(TEXT)
    records = engine.sync("p", ids)
    return engine, ids, records[-1].top


@pytest.mark.parametrize("family", FAMILIES)
def test_saliency_and_input_x_gradient_equal_autograd(make_engine, tokenizer, family):
    engine, ids, top = prepared(make_engine, tokenizer, family)
    for cand in (top[0], top[7]):
        f, e, grad = reference_grad(engine.model, ids, cand.token_id)
        sal = engine.attribution("p", cand.token_id, "saliency")
        ixg = engine.attribution("p", cand.token_id, "input_x_gradient")
        np.testing.assert_allclose(sal.values, grad[0].norm(dim=-1).numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(ixg.values, (e * grad)[0].sum(dim=-1).numpy(), atol=1e-5, rtol=0)
        # The target is the table's candidate: the same log-probability as the record.
        assert sal.log_p == pytest.approx(cand.logprob, abs=1e-4)
        assert ixg.log_p == pytest.approx(f, abs=1e-5)
        assert sal.values.shape == (len(ids),) and sal.values.dtype == np.float32
        assert (sal.values >= 0).all() and not sal.signed and ixg.signed


def integrated_gradients_ends(engine, ids, target):
    """log p(target) at the prompt and at zero input embeddings, independently."""
    f_e, e, _ = reference_grad(engine.model, ids, target)
    f_b, _, _ = reference_grad(engine.model, ids, target, torch.zeros_like(e))
    return f_e, f_b


def test_integrated_gradients_completeness_at_default_steps(make_engine, tokenizer):
    """GPT-2 (learned position embeddings added to the input): 32 points add up to within 2%."""
    engine, ids, top = prepared(make_engine, tokenizer, "gpt2")
    for cand in (top[0], top[5], top[20]):
        ig = engine.attribution("p", cand.token_id, "integrated_gradients", baseline="zero")
        assert ig.n_steps == 32
        f_e, f_b = integrated_gradients_ends(engine, ids, cand.token_id)
        assert ig.log_p == pytest.approx(f_e, abs=1e-5)
        assert ig.log_p_baseline == pytest.approx(f_b, abs=1e-5)
        assert abs(float(ig.values.sum()) - (f_e - f_b)) <= 0.02 * abs(f_e - f_b)
        assert ig.completeness == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_integrated_gradients_completeness_on_rmsnorm_models(make_engine, tokenizer, family):
    """RMSNorm models: f(alpha e) moves in steps down to alpha ~ 1e-16 here (ig_path.py);
    the log-spaced points reach there, and at 1024 steps the scores add up within 2% of
    log p(t|e) - log p(t|0) from plain forward passes (32 are too few: README)."""
    engine, ids, top = prepared(make_engine, tokenizer, family)
    target = top[0].token_id
    ig = engine.attribution("p", target, "integrated_gradients", n_steps=1024, baseline="zero")
    f_e, f_b = integrated_gradients_ends(engine, ids, target)
    assert abs(f_e - f_b) > 1.0  # a real change to account for
    assert abs(float(ig.values.sum()) - (f_e - f_b)) <= 0.02 * abs(f_e - f_b)


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma2"])
def test_integrated_gradients_report_their_completeness(make_engine, tokenizer, family):
    """At the default 32 steps an RMSNorm model's scores need not add up; the result says
    by how much (the legend shows it)."""
    engine, ids, top = prepared(make_engine, tokenizer, family)
    target = top[0].token_id
    ig = engine.attribution("p", target, "integrated_gradients", baseline="zero")
    f_e, f_b = integrated_gradients_ends(engine, ids, target)
    assert ig.log_p == pytest.approx(f_e, abs=1e-5)
    assert ig.log_p_baseline == pytest.approx(f_b, abs=1e-5)
    assert ig.completeness == pytest.approx(float(ig.values.sum()) / (f_e - f_b), rel=1e-5)


def test_integrated_gradients_equal_a_fine_even_grid_where_the_path_is_smooth(make_engine, tokenizer):
    """GPT-2's path is smooth on [0, 1]: each position's score at 32 log-spaced points
    equals a 256-point Gauss-Legendre sum on an even grid in alpha, with plain autograd,
    within 2% of the largest score."""
    engine, ids, top = prepared(make_engine, tokenizer, "gpt2")
    target = top[2].token_id
    ig = engine.attribution("p", target, "integrated_gradients", baseline="zero")
    nodes, weights = np.polynomial.legendre.leggauss(256)  # on [-1, 1]
    alphas, weights = (nodes + 1) / 2, weights / 2
    _, e, _ = reference_grad(engine.model, ids, target)
    avg = torch.zeros_like(e)
    for a, w in zip(alphas, weights):
        _, _, g = reference_grad(engine.model, ids, target, float(a) * e)
        avg += float(w) * g
    want = (e * avg)[0].sum(dim=-1).numpy()
    np.testing.assert_allclose(ig.values, want, atol=0.02 * np.abs(want).max(), rtol=0)


def test_default_model_attribution(tokenizer):
    """The embedded real model: the direct gradient on a trained model."""
    from explorer.config import ModelSettings

    engine = Engine.load(ModelSettings(name="embedded"))  # pinned: the default is SmolLM2 now
    ids = engine.encode(TEXT)
    top = engine.sync("p", ids)[-1].top
    target = top[0].token_id
    f, e, grad = reference_grad(engine.model, ids, target)
    sal = engine.attribution("p", target, "saliency")
    np.testing.assert_allclose(sal.values, grad[0].norm(dim=-1).numpy(), atol=1e-5, rtol=0)


def test_cached_per_prompt_target_and_method(make_engine, tokenizer):
    engine, ids, top = prepared(make_engine, tokenizer, "llama")
    calls = []
    handle = engine.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        first = engine.attribution("p", top[0].token_id, "integrated_gradients", n_steps=4)
        n = len(calls)
        assert n >= 2
        assert engine.attribution("p", top[0].token_id, "integrated_gradients", n_steps=4) is first
        assert len(calls) == n  # no model work for a cached answer
        other = engine.attribution("p", top[1].token_id, "integrated_gradients", n_steps=4)
        assert len(calls) > n and not np.array_equal(other.values, first.values)
        engine.sync("q", ids)  # another key, the same ids: the same answer
        assert engine.attribution("q", top[0].token_id, "integrated_gradients", n_steps=4) is first
    finally:
        handle.remove()


def test_progress_and_cancel(make_engine, tokenizer):
    engine, ids, top = prepared(make_engine, tokenizer, "llama")
    seen = []
    ig = engine.attribution("p", top[0].token_id, "integrated_gradients", n_steps=12,
                            progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] > 12 and [d for d, _ in seen] == sorted(d for d, _ in seen)
    with pytest.raises(Cancelled):
        engine.attribution("p", top[1].token_id, "integrated_gradients", cancelled=lambda: True)
    # Nothing was cached by the cancelled run; the prompt is intact.
    again = engine.attribution("p", top[1].token_id, "integrated_gradients", n_steps=12)
    assert np.isfinite(again.values).all() and again is not ig
    assert engine.records("p")[-1].top == top


def test_after_sync_work_in_inference_mode(make_engine, tokenizer):
    """Appends and pops run under inference_mode; attribution afterwards still works."""
    engine, ids, top = prepared(make_engine, tokenizer, "gemma2")
    engine.sync("p", ids + [top[0].token_id])
    engine.sync("p", ids)
    for method in ATTRIBUTION_METHODS:
        out = engine.attribution("p", top[0].token_id, method, n_steps=4)
        assert np.isfinite(out.values).all()


def test_bf16_model_gives_fp32_scores_close_to_fp32(tokenizer):
    model = tiny_model("llama", len(tokenizer))
    ids = [int(i) for i in tokenizer(TEXT)["input_ids"]]
    f32 = Engine.from_pretrained_objects(model, tokenizer)
    f32.sync("p", ids)
    target = f32.records("p")[-1].top[0].token_id
    ref = f32.attribution("p", target, "saliency").values
    bf16 = Engine.from_pretrained_objects(tiny_model("llama", len(tokenizer)).to(torch.bfloat16),
                                          tokenizer)
    bf16.sync("p", ids)
    out = bf16.attribution("p", target, "saliency")
    assert out.values.dtype == np.float32 and np.isfinite(out.values).all()
    assert np.corrcoef(out.values, ref)[0, 1] > 0.95


def test_model_without_input_embeddings_is_unavailable(tokenizer):
    model = tiny_model("llama", len(tokenizer))

    def no_embeddings():
        raise NotImplementedError

    model.get_input_embeddings = no_embeddings
    engine = Engine.from_pretrained_objects(model, tokenizer, name="odd")
    engine.sync("p", engine.encode(TEXT))
    assert engine.capabilities.attribution is False
    with pytest.raises(Unavailable, match="does not expose its input embeddings"):
        engine.attribution("p", 3, "saliency")


def test_engine_capability_and_table_backend(make_engine):
    from fake_backend import TableBackend

    assert make_engine("llama").capabilities.attribution is True
    fake = TableBackend()
    fake.sync("p", [0, 1, 2])
    with pytest.raises(Unavailable, match="Attribution is not available on this backend"):
        fake.attribution("p", 1, "saliency")
