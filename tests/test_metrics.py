"""Pure metric functions, checked on hand-made tensors (no model)."""

import math

import torch

from explorer.engine import metrics


def test_entropy_uniform_and_certain():
    uniform = torch.full((4,), math.log(1 / 4))
    assert abs(float(metrics.entropy(uniform)) - math.log(4)) < 1e-6
    certain = torch.tensor([0.0, -math.inf, -math.inf])
    assert float(metrics.entropy(certain)) == 0.0  # 0 * ln 0 counts as 0, not NaN


def test_log_probs_are_fp32_and_normalised():
    lp = metrics.log_probs(torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.bfloat16))
    assert lp.dtype == torch.float32
    assert abs(float(lp.exp().sum()) - 1) < 1e-6


def test_rank_is_one_plus_strictly_greater():
    lp = torch.log_softmax(torch.tensor([[0.5, 3.0, 1.0, 3.0]]), -1)
    assert metrics.rank_of(lp, torch.tensor([1])).tolist() == [1]
    assert metrics.rank_of(lp, torch.tensor([2])).tolist() == [3]
    assert metrics.rank_of(lp, torch.tensor([0])).tolist() == [4]


def test_top_k_sorted_and_clipped_to_width():
    lp = torch.log_softmax(torch.tensor([0.0, 2.0, 1.0]), -1)
    values, ids = metrics.top_k(lp, 10)
    assert ids.tolist() == [1, 2, 0]
    assert values[0] >= values[1] >= values[2]


def test_soft_cap():
    z = torch.tensor([-100.0, 0.0, 1.0])
    capped = metrics.soft_cap(z, 30.0)
    assert torch.allclose(capped, torch.tanh(z / 30) * 30)
    assert metrics.soft_cap(z, None) is z


def test_select_heads_searches_all_layers():
    rows = torch.full((3, 2, 5), 0.2)  # every head uniform: zero variance
    rows[2, 1] = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])  # sharp head in the LAST layer
    rows[0, 0] = torch.tensor([0.1, 0.3, 0.2, 0.2, 0.2])  # mildly varied head in layer 0
    assert metrics.select_heads(rows, 1) == [(2, 1)]
    assert metrics.select_heads(rows, 2) == [(2, 1), (0, 0)]


def test_influence_mean_of_selected_scaled():
    rows = torch.zeros((2, 2, 4))
    rows[0, 0] = torch.tensor([0.7, 0.1, 0.1, 0.1])
    rows[1, 1] = torch.tensor([0.1, 0.1, 0.1, 0.7])
    rows[0, 1] = torch.tensor([0.25, 0.25, 0.25, 0.25])
    rows[1, 0] = torch.tensor([0.25, 0.25, 0.25, 0.25])
    values, heads = metrics.influence(rows, 2)
    assert set(heads) == {(0, 0), (1, 1)}
    # mean row = [0.4, 0.1, 0.1, 0.4] -> scaled [1, 0, 0, 1]
    assert torch.allclose(values, torch.tensor([1.0, 0.0, 0.0, 1.0]))


def test_influence_constant_row_is_all_ones():
    rows = torch.ones((1, 1, 1))  # one-token prompt: everything attends to it
    values, _ = metrics.influence(rows, 4)
    assert values.tolist() == [1.0]
