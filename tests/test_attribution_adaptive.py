"""Integrated gradients from the default baseline (mean-keep-first) with adaptive steps, and
the attention method, against independent computations:

- the Clenshaw-Curtis start points' weights against the exact integral of the Chebyshev
  interpolant (numpy's chebyshev module, a different construction);
- the refinement on a path whose integral is known in closed form (a narrow arctan step);
- the quadrature weights against the integrals of the points' hat functions (numpy), and
  the scores against a sum over the same points of plain torch.autograd.grad gradients
  (never the engine's code), and the path's ends against plain forward passes;
- completeness within 2% on every tiny architecture in conftest.py;
- attention against transformers' eager attentions of one full forward pass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import TINY_CONFIGS
from explorer.backend.types import ATTRIBUTION_BASELINES, Attribution
from explorer.engine.ig_path import clenshaw_curtis

TEXT = "The quick brown fox jumps over the lazy"


def chebyshev_points_and_weights(n: int):
    """alpha_j = (1 - cos(j pi / n)) / 2 and w_j = the integral over [0, 1] of the j-th
    Lagrange polynomial through those points, via a Chebyshev fit and its antiderivative."""
    from numpy.polynomial import chebyshev as C

    x = np.cos(np.arange(n + 1) * np.pi / n)  # on [-1, 1]
    weights = []
    for j in range(n + 1):
        unit = np.zeros(n + 1)
        unit[j] = 1.0
        series = C.chebfit(x, unit, n)
        antider = C.chebint(series)
        weights.append((C.chebval(1.0, antider) - C.chebval(-1.0, antider)) / 2)
    return (1 - x) / 2, np.array(weights)


@pytest.mark.parametrize("n", [2, 8, 32, 64])
def test_clenshaw_curtis_weights_and_nesting(n):
    keys, alphas, weights = clenshaw_curtis(n)
    want_a, want_w = chebyshev_points_and_weights(n)
    np.testing.assert_allclose(alphas, want_a, atol=1e-12)
    np.testing.assert_allclose(weights, want_w, atol=1e-10)
    finer = dict(zip(*clenshaw_curtis(2 * n)[:2]))
    for key, a in zip(keys, alphas):  # every point of n is a point of 2n, with the same key
        assert finer[key] == pytest.approx(a, abs=1e-15)


def baseline_rows(model, ids, name="mean-keep-first"):
    """b built here from the embedding matrix: the mean row everywhere, the first kept."""
    with torch.no_grad():
        table = model.get_input_embeddings()
        e = table(torch.tensor([ids])).float()
        mean = table(torch.arange(table.weight.shape[0])[None])[0].double().mean(0).float()
    assert name == "mean-keep-first"
    b = mean.expand_as(e).clone()
    b[:, 0] = e[:, 0]
    return e, b


def hat_weights(points: np.ndarray) -> np.ndarray:
    """The trapezoid rule's weights, built independently: w_k = the integral over [0, 1] of the
    piecewise-linear function that is 1 at point k and 0 at the others (numpy.trapezoid
    on a fine grid that contains every point)."""
    grid = np.union1d(points, np.linspace(0, 1, 20001))
    return np.array([np.trapezoid(np.interp(grid, points, np.eye(len(points))[k]), grid)
                     for k in range(len(points))])


def reference_ig(model, ids, target, points, weights, batch=33):
    """sum_k w_k * (e - b) . df/de at b + alpha_k (e - b), with torch.autograd.grad, over the
    given points and weights; plus f(e), f(b)."""
    e, b = baseline_rows(model, ids)
    alphas, weights = np.asarray(points), np.asarray(weights)
    assert alphas[0] == 0.0 and alphas[-1] == 1.0 and np.all(np.diff(alphas) > 0)
    np.testing.assert_allclose(weights, hat_weights(alphas), atol=1e-9)
    total = torch.zeros(len(ids), dtype=torch.float64)
    ends = {}
    for start in range(0, len(alphas), batch):
        a = torch.tensor(alphas[start:start + batch], dtype=torch.float32)
        x = (b + a[:, None, None] * (e - b)).requires_grad_(True)
        f = torch.log_softmax(model(inputs_embeds=x, use_cache=False).logits[:, -1].float(), -1)[:, target]
        (g,) = torch.autograd.grad(f.sum(), x)
        s = ((e - b).double() * g.double()).sum(-1)  # [batch, n]
        total += (torch.tensor(weights[start:start + batch])[:, None] * s).sum(0)
        for alpha, value in zip(alphas[start:start + batch], f.tolist()):
            ends[float(alpha)] = value
    return total.numpy(), ends[1.0], ends[0.0]


def assert_scores_match(ig: Attribution, want: np.ndarray, f_e: float, f_b: float):
    assert ig.log_p == pytest.approx(f_e, abs=1e-4)
    assert ig.log_p_baseline == pytest.approx(f_b, abs=1e-4)
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(ig.values, want, atol=1e-3 * scale, rtol=1e-3)


@pytest.mark.parametrize("family", sorted(TINY_CONFIGS))
def test_default_baseline_is_complete_on_every_tiny_architecture(make_engine, tokenizer, family):
    """From mean-keep-first with adaptive steps, the scores add up to within 2% of
    log p(t | e) - log p(t | b), both from plain forward passes of the model."""
    engine = make_engine(family)
    ids = engine.encode(TEXT)
    target = engine.sync("p", ids)[-1].top[0].token_id
    ig = engine.attribution("p", target, "integrated_gradients")
    assert ig.baseline == ATTRIBUTION_BASELINES[0] == "mean-keep-first"
    assert 32 <= ig.n_steps <= 512 and len(ig.points) == ig.n_steps + 1 and ig.values[0] == 0
    e, b = baseline_rows(engine.model, ids)
    with torch.no_grad():
        f = torch.log_softmax(engine.model(inputs_embeds=torch.cat([e, b]), use_cache=False)
                              .logits[:, -1].float(), -1)[:, target].tolist()
    assert ig.log_p == pytest.approx(f[0], abs=1e-4)
    assert ig.log_p_baseline == pytest.approx(f[1], abs=1e-4)
    assert abs(float(ig.values.sum()) - (f[0] - f[1])) <= 0.02 * abs(f[0] - f[1]), \
        (family, ig.n_steps, ig.completeness)
    assert ig.complete and ig.fields() == {
        "attribution_method": "integrated_gradients", "attribution_baseline": "mean-keep-first",
        "attribution_steps": ig.n_steps, "attribution_completeness": round(ig.completeness, 6),
        "attribution_points": list(ig.points), "attribution_weights": list(ig.weights)}


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2"])
def test_scores_equal_an_independent_autograd_sum_over_the_same_points(make_engine, tokenizer, family):
    engine = make_engine(family)
    ids = engine.encode(TEXT)
    target = engine.sync("p", ids)[-1].top[1].token_id
    ig = engine.attribution("p", target, "integrated_gradients")
    assert_scores_match(ig, *reference_ig(engine.model, ids, target, ig.points, ig.weights))


def test_path_is_refined_until_complete_and_computes_each_point_once(make_engine, tokenizer):
    """Starting from 2 steps the path is refined until within 2%, and computes each point
    once: n + 1 gradient points in all for n steps."""
    engine = make_engine("llama")
    ids = engine.encode(TEXT)
    target = engine.sync("p", ids)[-1].top[0].token_id
    points = []
    forward = engine.model.forward

    def counting(*args, **kwargs):
        if "inputs_embeds" in kwargs:
            points.append(int(kwargs["inputs_embeds"].shape[0]))
        return forward(*args, **kwargs)

    engine.model.forward = counting
    ig = engine.attribution("p", target, "integrated_gradients", n_steps=2)
    n = ig.n_steps
    assert n > 2 and ig.complete
    assert sum(points) == n + 1 == len(set(ig.points))
    # The 2 steps alone, not allowed to refine, were not complete: that is why it refined.
    from explorer.engine.attribution import Attributor

    fixed = Attributor(engine.model).attribute(ids, target, "integrated_gradients",
                                               n_steps=2, max_steps=2)
    assert fixed.n_steps == 2 and not fixed.complete


def test_refinement_finds_a_narrow_step_that_even_points_miss():
    """A path whose f is a narrow arctan step at alpha = 0.37 (width 1e-3): f(e) - f(b) is
    known in closed form. The adaptive path comes within 2% with far fewer than 512
    steps, its points crowd around the step, and 512 even (Clenshaw-Curtis) steps miss."""
    from explorer.engine.ig_path import clenshaw_curtis
    from explorer.engine.ig_run import Integrand, Path, adaptive

    centre, width = 0.37, 1e-3
    embeds, baseline = torch.ones(1, 1, 1), torch.zeros(1, 1, 1)

    def f(x):  # [B, 1, 1] -> [B]; on the path x = alpha
        return torch.atan((x[:, 0, 0] - centre) / width)

    exact = math.atan((1 - centre) / width) - math.atan(-centre / width)
    path = Path(f, embeds, baseline, batch=16, log_grid=False)
    alphas, weights, keys, unresolved = adaptive(path, Integrand(), 32, 512, lambda missing: None)
    g = np.array([width / ((a - centre) ** 2 + width ** 2) for a in alphas])  # f' in closed form
    assert abs(weights @ g - exact) <= 0.02 * abs(exact)
    f = np.arctan((alphas - centre) / width)
    errors = (g[1:] + g[:-1]) / 2 * np.diff(alphas) - np.diff(f)
    assert unresolved == pytest.approx(np.abs(errors).sum() / abs(exact), rel=1e-3)  # f in fp32
    assert len(alphas) - 1 < 200
    _, even, w_even = clenshaw_curtis(512)
    added = np.setdiff1d(alphas, clenshaw_curtis(32)[1])
    assert np.sum(np.abs(added - centre) < 0.01) > len(added) / 2
    g_even = [width / ((a - centre) ** 2 + width ** 2) for a in even]  # f' in closed form
    assert abs(np.dot(w_even, g_even) - exact) > 0.02 * abs(exact)


def test_attention_equals_eager_attentions_of_a_full_forward(make_engine, tokenizer):
    for family in ("llama", "gemma2", "gpt2", "falcon"):
        engine = make_engine(family)
        ids = engine.encode(TEXT)
        top = engine.sync("p", ids)[-1].top
        got = engine.attribution("p", top[0].token_id, "attention")
        model = engine.model
        before = model.config._attn_implementation
        model.set_attn_implementation("eager")
        # Falcon computes attention inline and reads its config on every call (its sdpa
        # path with output_attentions returns other weights): eager is set there directly.
        model.config._attn_implementation = "eager"
        try:
            with torch.no_grad():
                out = model(input_ids=torch.tensor([ids]), output_attentions=True, use_cache=False)
        finally:
            model.set_attn_implementation(before)
            model.config._attn_implementation = before
        want = torch.stack([a[0, :, -1, :] for a in out.attentions]).float().mean(dim=(0, 1))
        np.testing.assert_allclose(got.values, want.numpy(), atol=1e-5, rtol=0)
        assert got.values.sum() == pytest.approx(1.0, abs=1e-5) and not got.signed
        assert got.log_p == pytest.approx(top[0].logprob, abs=1e-4)
        assert got.fields()["attribution_method"] == "attention" and got.completeness is None
        # The engine's own steps still run its fast attention afterwards.
        assert model.config._attn_implementation == before
