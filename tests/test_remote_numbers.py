"""What a truncated top-K list can say, checked against the full distribution (no server)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explorer.remote.numbers import build_records, make_distribution


def full_logprobs(seed: int, vocab: int = 500, scale: float = 3.0) -> np.ndarray:
    z = np.random.default_rng(seed).normal(size=vocab) * scale
    return z - np.log(np.exp(z - z.max()).sum()) - z.max()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 5, 20, 499])
def test_top_k_entropy_is_a_lower_bound_and_exact_when_complete(seed, k):
    lp = full_logprobs(seed)
    exact = float(-(np.exp(lp) * lp).sum())
    order = np.argsort(-lp, kind="stable")
    top = make_distribution([(int(i), float(lp[i])) for i in order[:k]], len(lp))
    assert top.entropy_bound and top.entropy <= exact + 1e-9
    # Better than the naive partial sum: the left-out mass counts too.
    naive = float(-(np.exp(lp[order[:k]]) * lp[order[:k]]).sum())
    assert top.entropy >= naive - 1e-12
    full = make_distribution([(int(i), float(lp[i])) for i in order], len(lp))
    assert not full.entropy_bound and math.isclose(full.entropy, exact, rel_tol=1e-9)


def test_ranks_and_tracked_tokens_survive_the_cut():
    lp = full_logprobs(1)
    order = np.argsort(-lp, kind="stable")
    pairs = [(int(i), float(lp[i])) for i in order]
    rare = int(order[300])
    dist = make_distribution(pairs, len(lp), keep=10, track=(rare,))
    assert len(dist.top) == 10 and dist.rank_of(rare) == 301
    assert dist.logprob_of(rare) == pytest.approx(lp[rare])
    assert dist.rank_of(int(order[3])) == 4
    assert dist.logprob_of(int(order[400])) is None  # neither listed nor tracked: unknown


def test_records_mark_bounds_and_unknowns():
    lp = full_logprobs(2, vocab=50)
    order = np.argsort(-lp, kind="stable")
    d = make_distribution([(int(i), float(lp[i])) for i in order[:5]], 50)
    ids = [int(order[0]), int(order[1])]
    recs = build_records(ids, [None, d], [d, None], vocab_size=50, limit=3, token_text=str,
                         tops_from=1)
    assert recs[0].logprob is None and recs[0].next_entropy_bound and recs[0].top == ()
    assert recs[1].rank == 2 and recs[1].entropy_bound
    assert recs[1].top == () and math.isnan(recs[1].next_entropy)
    last = build_records(ids[:1], [None], [d], vocab_size=50, limit=3, token_text=str, tops_from=5)
    assert [c.token_id for c in last[0].top] == [int(t) for t in order[:3]]  # the last always
    both = build_records(ids, [None, d], [d, d], vocab_size=50, limit=3, token_text=str)
    assert both[0].top == both[1].top and len(both[0].top) == 3
