"""The position cursor (issue 23) on tiny random models: every number of the table at a
past position equals an independent computation from one plain full forward pass of the
tokens before it (p_base top 30, the token's log-prob, rank and entropy, p_final under the
sampler), after random append / pop / fork / branch / switch sequences with caches evicted;
a branch costs one forward pass on the parent's cache; the original stays intact."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from conftest import count_forwards

from explorer.sampling import SamplingConfig
from explorer.session.headless import Headless

TOL = 1e-4
TEMPERATURE, TOP_K, TOP_P = 0.8, 9, 0.9
SAMPLING = SamplingConfig(values={"seed": 3, "temperature": TEMPERATURE, "top_k": TOP_K, "top_p": TOP_P,
                                  "min_p": 0.0, "repetition_penalty": 1.0,
                                  "presence_penalty": 0.0, "frequency_penalty": 0.0})


@torch.no_grad()
def reference(model, before: list[int]) -> dict:
    """From scratch: the distribution after `before` (one full forward pass, fp64 metrics)
    and the sampler's p_final over it (temperature, then top-k, then top-p)."""
    model.config._attn_implementation = "eager"
    model.set_attn_implementation("eager")
    z = model(torch.tensor([before])).logits[0, -1].double()
    logp = torch.log_softmax(z, -1)
    p = logp.exp()
    scaled = torch.softmax(z / TEMPERATURE, -1)
    order = torch.argsort(scaled, descending=True)
    keep = torch.zeros_like(scaled, dtype=torch.bool)
    keep[order[:TOP_K]] = True
    ranked = scaled[order[:TOP_K]] / scaled[order[:TOP_K]].sum()
    mass = torch.cumsum(ranked, 0) - ranked  # probability before each of them
    keep[order[:TOP_K][mass >= TOP_P]] = False
    final = torch.where(keep, scaled, torch.zeros_like(scaled))
    return dict(logp=logp, entropy=float(-(p * logp).sum()), final=final / final.sum())


def check_table(core, model, where: str) -> None:
    table = core.cursor.table()
    index, ids = core.cursor.index, core.book.current.ids
    assert table is not None and table.index == index, where
    assert table.label == f"position {index + 1}/{len(ids)}"
    ref = reference(model, list(ids[:index]))
    logp, token = ref["logp"], ids[index]
    assert table.token.token_id == token
    assert abs(table.token.logprob - float(logp[token])) < TOL, where
    lo = int((logp > logp[token] + TOL).sum()) + 1  # ranks fp32 may give near ties
    hi = int((logp > logp[token] - TOL).sum()) + 1
    assert lo <= table.token.rank <= hi, where
    assert abs(table.token.entropy - ref["entropy"]) < TOL, where
    got = [c.token_id for c in table.top]
    want = torch.topk(logp, 30)
    assert len(got) == 30 == len(set(got)), where
    assert np.allclose([c.logprob for c in table.top], want.values.numpy(), atol=TOL), where
    assert np.allclose([c.logprob for c in table.top], logp[got].numpy(), atol=TOL), where
    assert table.sampler is not None, where
    rows = [c.token_id for c in table.rows]  # the top, then the token when it is not in it
    assert rows == got + ([] if token in got else [token]) and rows[table.token_row] == token, where
    assert np.allclose([c.logprob for c in table.rows], logp[rows].numpy(), atol=TOL), where
    assert np.allclose(table.sampler.p_final, ref["final"][rows].numpy(), atol=TOL), where
    assert abs(table.token_p_final - float(ref["final"][token])) < TOL, where
    assert abs(table.sampler.entropy_base - ref["entropy"]) < TOL, where
    assert table.token_in_top == (token in got)


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2", "qwen2", "cohere"])
def test_past_positions_match_full_forward(make_engine, family):
    rng = random.Random(sum(map(ord, family)))
    engine = make_engine(family, tokens_to_show=30, prefill_chunk=6, cache_size=2, influence=False)
    vocab = engine.info.vocab_size
    run = Headless(engine, SAMPLING)
    core = run.open([rng.randrange(vocab) for _ in range(rng.randint(14, 30))])
    checked = 0
    for step in range(14):
        op = rng.choice(["append", "append", "pop", "fork", "branch", "branch", "next", "load"])
        ids = core.book.current.ids
        if op == "append":
            core.append(rng.randrange(30))
        elif op == "pop" and len(ids) > 3:
            core.pop()
        elif op == "fork":
            core.fork()
        elif op == "branch" and len(ids) > 2:
            core.cursor.put(rng.randrange(1, len(ids)))
            run.settle()
            parent, index = core.book.current, core.cursor.index
            row = rng.randrange(30)
            pick = core.lane.records[index - 1].top[row].token_id
            assert core.cursor.branch(row)
            run.settle()
            assert core.book.current.ids == parent.ids[:index] + (pick,), family
            assert core.book.current.branched_from == (core.book.index, index + 1)
            assert core.cursor.index is None  # the live end of the new prompt
            assert any(p.key == parent.key and p.ids == parent.ids for p in core.book)
        elif op == "next":
            core.lane.press("next")
        elif op == "load":
            core.lane.book.add([rng.randrange(vocab) for _ in range(rng.randint(8, 20))])
        run.settle()
        ids = core.book.current.ids
        for _ in range(2):  # random positions, and the cursor walked there by [ / ]
            if rng.random() < 0.5:
                core.cursor.put(rng.randrange(1, len(ids)))
            else:
                core.cursor.put(None)
                for _ in range(rng.randint(1, min(4, len(ids) - 1))):
                    core.cursor.move(-1)
            run.settle()
            check_table(core, engine.model, f"{family} step {step} {op}")
            checked += 1
        core.cursor.put(None)
    assert checked == 28


def test_branch_is_one_decode_step_on_the_parents_cache(make_engine):
    """→ at position k of a 40-token prompt: one forward pass of one position (the chosen
    token, on the parent's cache cropped to k), no prefill; the parent keeps its ids and
    records; the new prompt's numbers equal full forward passes."""
    engine = make_engine("llama", tokens_to_show=30, prefill_chunk=8)
    rng = random.Random(5)
    run = Headless(engine, SAMPLING)
    core = run.open([rng.randrange(engine.info.vocab_size) for _ in range(40)])
    parent = core.book.current
    before = core.lane.records
    core.cursor.put(20)
    run.settle()
    top = core.cursor.table().top
    forward = engine.model.forward  # put back before the reference passes
    calls = count_forwards(engine)
    assert core.cursor.branch(row=4)
    run.settle()
    # One decode step of the chosen token: the distribution before it is the raw row the
    # look at position 20 kept (its log-prob and rank come from there).
    assert calls == [1], calls
    engine.model.forward = forward
    assert core.book.current.ids == parent.ids[:20] + (top[4].token_id,)
    ref = reference(engine.model, list(parent.ids[:20]))
    new = core.lane.records[-1]
    assert abs(new.logprob - float(ref["logp"][top[4].token_id])) < TOL
    assert new.rank == 5 and abs(new.entropy - ref["entropy"]) < TOL
    after = reference(engine.model, list(core.book.current.ids))
    assert abs(new.next_entropy - after["entropy"]) < TOL
    assert [c.token_id for c in new.top] == torch.topk(after["logp"], 30).indices.tolist()
    assert core.book.current.branched_from == (1, 21) and core.book.index == 1
    core.lane.press("previous")  # w: the original, intact
    run.settle()
    assert core.book.current.ids == parent.ids and core.lane.records == before


def test_moving_the_cursor_over_kept_rows_costs_no_forward(make_engine):
    """The raw rows of the last positions are kept from the steps that made them: [ three
    times is no model work; a row further back is one decode step, then kept."""
    engine = make_engine("llama", tokens_to_show=30, prefill_chunk=8)
    run = Headless(engine, SAMPLING)
    core = run.open(list(range(3, 40)))
    calls = count_forwards(engine)
    for _ in range(3):
        core.cursor.move(-1)
        run.settle()
        assert core.cursor.table().sampler is not None
    assert calls == [] and core.cursor.table().label == "position 35/37"
    core.cursor.put(5)
    run.settle()
    assert calls == [1]
    core.cursor.move(1)
    run.settle()
    assert calls == [1, 1]  # position 6 needs its own step
    core.cursor.move(-1)
    run.settle()
    assert calls == [1, 1]  # 5 was kept
    core.cursor.move(40)
    assert core.cursor.index is None and core.cursor.table() is None


def test_attribution_at_a_past_position_is_the_prefix_attribution(make_engine):
    """The attribution at position k scores the tokens before k toward the token at k: the
    same numbers as a prompt of those tokens alone."""
    engine = make_engine("llama", tokens_to_show=30)
    run = Headless(engine, SAMPLING)
    ids = list(range(3, 20))
    core = run.open(ids)
    core.cursor.put(9)
    view = core.cursor.attribution_at("saliency")
    assert view.position == 9 and view.target == ids[9]
    got = engine.attribution(core.book.current.key, view.target, view.method, position=view.position)
    engine.sync("prefix", ids[:9])
    want = engine.attribution("prefix", ids[9], "saliency")
    assert np.allclose(got.values, want.values) and len(got.values) == 9
    other = core.cursor.attribution_at("saliency", candidate=7)
    assert other.target == 7 and other.position == 9
