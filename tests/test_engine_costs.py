"""Model work per operation: counted forward passes (design.md, "one forward pass per
new token, never per keystroke")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import count_forwards


@pytest.fixture
def counted(make_engine):
    """An engine whose model records the number of positions fed to each forward call."""
    engine = make_engine("llama", prefill_chunk=8, cache_size=2, influence_heads=4)
    calls = count_forwards(engine)
    return engine, calls


def test_load_is_one_chunked_prefill(counted):
    engine, calls = counted
    ids = list(range(2, 22))  # 20 tokens in chunks of 8; the last chunk also gives influence
    engine.sync("a", ids)
    assert calls == [8, 8, 4]
    engine.influence("a")  # known from the load: no model work
    assert calls == [8, 8, 4]


def test_append_is_one_decode_step_pop_is_none(counted):
    engine, calls = counted
    ids = list(range(2, 14))
    engine.sync("a", ids)
    calls.clear()
    engine.sync("a", ids + [40])
    assert calls == [1]
    calls.clear()
    engine.sync("a", ids)  # pop
    assert calls == []
    engine.influence("a")  # known from when this prefix was last: no model work
    assert calls == []
    engine.sync("a", ids + [41])  # append after a pop: still one step
    assert calls == [1]


def test_append_after_many_pops_is_still_one_forward(counted):
    engine, calls = counted
    ids = list(range(2, 40))
    engine.sync("a", ids)
    engine.sync("a", ids[:20])  # 18 pops: more than the kept log-prob rows
    calls.clear()
    engine.sync("a", ids[:20] + [7])
    assert len(calls) == 1 and calls[0] <= 2


def test_fork_shares_records_and_switch_costs_nothing(counted):
    engine, calls = counted
    ids = list(range(2, 14))
    parent = engine.sync("a", ids)
    calls.clear()
    child = engine.sync("b", ids)  # fork
    assert calls == [] and child is parent or all(c is p for c, p in zip(child, parent))
    engine.sync("a", ids)  # switch back
    assert calls == []
    engine.sync("b", ids + [9])  # the fork's first append borrows a copy of the parent cache
    assert calls == [1]
    assert engine.records("a") == parent  # parent unchanged


def test_evicted_prompt_rebuilds_transparently(counted):
    engine, calls = counted
    for key in "abc":  # cache_size=2: "a" is evicted
        engine.sync(key, [3, 4, 5, 6, 7] + [ord(key)])
    calls.clear()
    assert len(engine.sync("a", [3, 4, 5, 6, 7, ord("a")])) == 6
    assert calls == []  # records are kept even when the cache is not
    engine.sync("a", [3, 4, 5, 6, 7, ord("a"), 8])
    # borrows the cache of "b" or "c" for the shared prefix [3..7], then two positions
    assert len(calls) == 1 and calls[0] <= 3


def test_results_are_plain_values(make_engine):
    engine = make_engine("gpt2")
    records = engine.sync("k", [5, 6, 7])
    for r in records:
        for value in (r.logprob, r.rank, r.entropy, r.next_entropy):
            assert value is None or type(value) in (int, float)
        for c in r.top:
            assert type(c.token_id) is int and type(c.prob) is float
    assert not isinstance(engine.influence("k"), torch.Tensor)


def test_cancel_between_chunks_leaves_prompt_unchanged(make_engine):
    from explorer.engine import SyncCancelled

    engine = make_engine("llama", prefill_chunk=4)
    before = engine.sync("k", [5, 6])
    seen = []
    with pytest.raises(SyncCancelled):
        engine.sync("k", list(range(2, 30)), progress=lambda d, t: seen.append((d, t)),
                    cancelled=lambda: len(seen) >= 2)
    assert engine.records("k") == before
    assert seen and seen[-1][1] == 28


def test_layer_prob_costs_nothing_until_a_layer_view_asks(make_engine):
    """With --layer_prob, loads and appends read no layer through lm_head; the layer views,
    once on, cost no forward pass beyond the one per appended token."""
    engine = make_engine("llama", prefill_chunk=8, layer_prob=True)
    calls = count_forwards(engine)
    head_rows: list[int] = []
    engine.parts.lm_head.register_forward_hook(
        lambda module, args, out: head_rows.append(args[0].shape[-2]))
    ids = list(range(2, 22))
    engine.sync("a", ids)
    engine.sync("a", ids + [40])
    assert calls == [8, 8, 4, 1]
    assert head_rows == calls  # lm_head ran only inside the model's own forward passes

    calls.clear()
    head_rows.clear()
    engine.layer_probs("a", [3, 4])  # the layer view comes on: no forward pass
    assert calls == [] and head_rows == [engine.info.n_layers]
    engine.prompt_layer_probs("a")  # the prompt's columns: one lens prefill, once
    for token in (41, 42, 43):  # appends with the layer views on: one step each
        ids = [r.token_id for r in engine.records("a")] + [token]
        calls.clear()
        engine.sync("a", ids)
        engine.layer_probs("a", [3, 4])
        cols = engine.prompt_layer_probs("a")
        assert calls == [1] and not np.isnan(cols[:, 1:]).any()
