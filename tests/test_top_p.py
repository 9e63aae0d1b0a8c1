"""Top-p without the full sort (explorer.sampling.top_p) against transformers'
TopPLogitsWarper itself: the same scores, bit for bit, on rows as wide as Qwen2.5's
(151,936) with and without ties, and through the whole pipeline."""

from __future__ import annotations

import pytest
import torch
import transformers
from transformers import TopPLogitsWarper

from explorer.sampling import SamplingSettings, final_scores
from explorer.sampling.top_p import top_p_filter

WIDE = 151_936


def rows(seed: int):
    """(name, [1, V] float32 row): plain, full of ties, and bf16-rounded (ties galore)."""
    g = torch.Generator().manual_seed(seed)
    plain = torch.randn(1, WIDE, generator=g) * 4
    yield "plain", plain
    yield "ties", (plain * 2).round() / 2  # a few dozen distinct values
    yield "bf16", plain.to(torch.bfloat16).float()
    yield "peaked", torch.cat([torch.tensor([[30.0, 29.0, 29.0]]), plain[:, 3:]], dim=1)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("top_p", [0.005, 0.3, 0.8, 0.95, 0.999])
def test_equals_the_warper_on_a_wide_row(seed, top_p):
    for name, row in rows(seed):
        want = TopPLogitsWarper(top_p=top_p)(None, row)
        got = top_p_filter(row, top_p)
        assert torch.equal(got, want), (name, top_p)
        assert torch.equal(torch.isinf(got), torch.isinf(want))


def test_many_random_rows_and_cuts():
    g = torch.Generator().manual_seed(7)
    for trial in range(60):
        width = (8192, 49152, WIDE)[trial % 3]
        row = torch.randn(1, width, generator=g) * float(torch.rand(1, generator=g) * 8 + 0.1)
        if trial % 4 == 0:
            row = (row * 4).round() / 4
        if trial % 5 == 0:
            row[0, : width // 2] = float("-inf")  # after top-k or a constraint
        top_p = float(torch.rand(1, generator=g)) * 0.99 + 0.005
        assert torch.equal(top_p_filter(row, top_p), TopPLogitsWarper(top_p=top_p)(None, row))


def test_the_common_case_needs_no_full_sort(monkeypatch):
    """Without equal logits at the cut, the answer comes without the warper (and its sort)."""
    row = next(rows(3))[1]
    want = TopPLogitsWarper(top_p=0.8)(None, row)

    def refuse(self, input_ids, scores):
        raise AssertionError("fell back to the full sort")

    monkeypatch.setattr(transformers.TopPLogitsWarper, "__call__", refuse)
    assert torch.equal(top_p_filter(row, 0.8), want)


def test_pipeline_equals_the_warpers_in_generate_order():
    """The whole pipeline with top-p on (and top-k, min-p around it) against the same
    warpers applied by hand, as generate applies them."""
    from transformers import MinPLogitsWarper, TemperatureLogitsWarper, TopKLogitsWarper

    row = next(rows(4))[1][0]
    for s in (SamplingSettings(temperature=0.7, top_p=0.8),
              SamplingSettings(temperature=1.3, top_k=5000, top_p=0.9, min_p=0.01)):
        scores = row[None, :].clone()
        scores = TemperatureLogitsWarper(s.temperature)(None, scores)
        if s.top_k:
            scores = TopKLogitsWarper(s.top_k)(None, scores)
        scores = TopPLogitsWarper(s.top_p)(None, scores)
        if s.min_p:
            scores = MinPLogitsWarper(s.min_p)(None, scores)
        assert torch.equal(final_scores(row, [1, 2], 2, s), scores[0])
