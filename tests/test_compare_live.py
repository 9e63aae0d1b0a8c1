"""The comparison that follows a prompt (explorer.compare.live): after the first full
comparison an append is one decode step per model and gives the numbers a whole new
comparison gives; a pop is a crop with no forward pass."""

from __future__ import annotations

import pytest
from conftest import count_forwards
from test_compare import STORY

from explorer.compare import compare_models
from explorer.compare.live import LiveComparison

TOL = 1e-4


def same_numbers(got, want):
    assert got.ids == want.ids and len(got.positions) == len(want.positions)
    for g, w in zip(got.positions, want.positions):
        assert (g.position, g.token_id, g.top1_a, g.top1_b) == (w.position, w.token_id, w.top1_a, w.top1_b)
        if w.kl_ab is None:
            assert g.kl_ab is None
        else:
            assert abs(g.kl_ab - w.kl_ab) < TOL
            assert abs(g.logprob_a - w.logprob_a) < TOL and abs(g.logprob_b - w.logprob_b) < TOL
    assert abs(got.next_kl - want.next_kl) < TOL and got.next_top1 == want.next_top1


def test_appends_and_pops_follow_with_one_step_each(make_engine, tokenizer):
    a = make_engine("llama", seed=0)
    b = make_engine("llama", seed=2)
    ids = tuple(tokenizer.encode(STORY)[:20])
    live = LiveComparison(a, b)
    a.sync("p", ids)
    same_numbers(live.update("p", ids), compare_models(a, b, ids))
    calls_a, calls_b = count_forwards(a), count_forwards(b)
    for t in (5, 77, 200):
        ids = ids + (t,)
        a.sync("p", ids)  # the app's own append step (the lane)
        got = live.update("p", ids)
        assert calls_b[-1:] == [1] and calls_a[-1:] == [1]  # one decode step each, no more
        same_numbers(got, compare_models(a, b, ids))
    before = (len(calls_a), len(calls_b))
    got = live.update("p", ids[:-2])
    assert (len(calls_a), len(calls_b)) == before  # a pop: no forward pass
    same_numbers(got, compare_models(a, b, ids[:-2]))
    # Several tokens at once (forced text): a whole comparison again.
    more = ids[:-2] + (9, 10, 11)
    same_numbers(live.update("p", more), compare_models(a, b, more))
