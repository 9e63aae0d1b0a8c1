"""Two branches of the prompt book (explorer.compare.branches) against a plain full
forward pass of each prompt: the split, each side's total log-prob and mean surprisal after
it, and every position's entropy."""

from __future__ import annotations

import math

import pytest
import torch
from app_fixtures import embedded_engine

from explorer.compare.branches import backend_records, compare_branches, default_other
from explorer.session.book import PromptBook


def reference(model, ids):
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    logprobs = [None] + [float(lp[i - 1, ids[i]]) for i in range(1, len(ids))]
    entropies = [None] + [float(-(lp[i - 1].exp() * lp[i - 1]).sum()) for i in range(1, len(ids))]
    return logprobs, entropies


def test_split_totals_and_entropies_match_full_passes():
    engine = embedded_engine()
    stem = engine.encode("Once upon a time, there was a little")
    book = PromptBook([stem + engine.encode_plain(" girl who lived in a house")])
    book.fork()
    book.set_ids(stem + engine.encode_plain(" dragon"))
    a, b = book.current, default_other(book)
    got = compare_branches(backend_records(engine), a, b)
    assert got.split == len(stem)
    for side, ids in ((got.a, a.ids), (got.b, b.ids)):
        logprobs, entropies = reference(engine.model, list(ids))
        after = logprobs[len(stem):]
        assert side.total_logprob == pytest.approx(sum(after), abs=1e-4)
        assert side.mean_surprisal == pytest.approx(-sum(after) / len(after), abs=1e-4)
        for got_h, want_h in zip(side.entropies[1:], entropies[1:]):
            assert got_h == pytest.approx(want_h, abs=1e-4)
        assert not side.entropy_bound
    want = "a" if got.a.mean_surprisal < got.b.mean_surprisal else "b"
    assert got.preferred == want


def test_default_other_is_the_fork_parent():
    book = PromptBook([(1, 2, 3), (1, 2, 3, 4, 5, 6)])
    book.next()
    parent = book.current
    book.fork()
    book.set_ids((1, 2, 3, 4, 9))
    assert default_other(book).key == parent.key
    single = PromptBook([(1, 2)])
    assert default_other(single) is None


def test_prefix_branch_has_nothing_after_the_split():
    engine = embedded_engine()
    ids = tuple(engine.encode("The cat sat on the mat"))
    book = PromptBook([ids, ids[:-2]])
    got = compare_branches(backend_records(engine), book.current, list(book)[1])
    assert got.split == len(ids) - 2 and got.b.after == 0
    assert got.b.mean_surprisal is None and got.preferred is None
    assert math.isfinite(got.a.total_logprob) and got.a.total_logprob < 0


def test_explorer_core_compares_branches_and_models():
    """Through the explorer core (the app's path): the shown prompt against its parent
    fork, and model A against a model B on the shown ids."""
    from explorer.compare import CompareError, compare_models
    from explorer.sampling import SamplingConfig
    from explorer.session.headless import Headless

    engine = embedded_engine()
    run = Headless(engine, SamplingConfig(values={"seed": 1}))
    core = run.open(engine.encode("The little dog ran"))
    with pytest.raises(CompareError, match="only one prompt"):
        core.comparisons.branches()
    core.fork()
    core.append(0)
    core.append(1)
    run.settle()
    got = core.comparisons.branches()
    assert got.split == len(engine.encode("The little dog ran")) and got.b.after == 0 and got.a.after == 2
    with pytest.raises(CompareError, match="No second model"):
        core.comparisons.models()
    core.comparisons.use_backend(engine)  # the same model as B: KL 0 everywhere
    _, ids = core.shown_prompt()
    shown = core.comparisons.models()
    assert shown.ids == ids and all(abs(p.kl_ab) < 1e-6 for p in shown.scored())
    core.append(0)
    run.settle()
    after = core.comparisons.models()
    _, ids = core.shown_prompt()
    assert after.ids == ids and len(after.positions) == len(ids)
    want = compare_models(engine, engine, ids)
    assert [p.top1_a for p in after.scored()] == [p.top1_a for p in want.scored()]
