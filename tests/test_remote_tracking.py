"""explorer.remote.tracking without a server: the prefix fetcher's cache, chunks, cancel and
failures, and the ranks it can vouch for. The "server" here is a tiny random Llama run one
prefix at a time (no cache), checked against the engine's chunked tracked pass, so both
sides are real and independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_model

from explorer.backend.errors import Cancelled
from explorer.engine.tracked import track
from explorer.remote.client import RemoteError
from explorer.remote.numbers import make_distribution
from explorer.remote.tracking import PrefixLogprobs, ranks_from_rows

V = 320
TOL = 1e-5


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama", V, seed=3)


class PrefixServer:
    """Answers what vLLM's logprob_token_ids answers: log p of the wanted tokens after each
    prompt's last position, from a plain forward pass of that prompt. Records what it was
    asked; can fail on a given call."""

    def __init__(self, model, fail_on: int | None = None):
        self.model, self.fail_on = model, fail_on
        self.requests: list[tuple[int, tuple[int, ...]]] = []  # (prompts, tokens)

    @torch.no_grad()
    def __call__(self, prefixes, wanted):
        self.requests.append((len(prefixes), tuple(wanted)))
        if self.fail_on is not None and len(self.requests) == self.fail_on:
            raise RemoteError("The server at 127.0.0.1:1 answered /v1/completions with 500: boom.")
        out = []
        for p in prefixes:
            lp = torch.log_softmax(self.model(torch.tensor([list(p)])).logits[0, -1].float(), -1)
            out.append({t: float(lp[t]) for t in wanted})
        return out


def ids_of(n: int, seed: int = 0) -> tuple[int, ...]:
    return tuple(int(t) for t in np.random.default_rng(seed).integers(2, V, size=n))


def test_every_position_equals_the_engines_tracked_pass(model):
    ids, tokens = ids_of(23), [5, 77, 319]
    server = PrefixServer(model)
    progress = []
    got = PrefixLogprobs(server, chunk=8).logprobs(ids, tokens, progress=lambda d, n: progress.append((d, n)))
    want = track(model, ids, tokens)
    assert np.abs(got - want.logprobs).max() < TOL
    assert [n for n, _ in server.requests] == [8, 8, 7]
    assert progress == [(8, 23), (16, 23), (23, 23)]


def test_appends_pops_forks_and_new_tokens_ask_only_for_what_is_missing(model):
    ids = ids_of(20, seed=1)
    server = PrefixServer(model)
    fetcher = PrefixLogprobs(server, chunk=8)
    fetcher.logprobs(ids, [5, 77])
    server.requests.clear()
    longer = ids + (9,)
    got = fetcher.logprobs(longer, [5, 77])  # an append: the new position only
    assert server.requests == [(1, (5, 77))]
    assert np.abs(got - track(model, longer, [5, 77]).logprobs).max() < TOL
    server.requests.clear()
    fetcher.logprobs(ids[:12], [5, 77])  # a pop: nothing
    fork = ids[:12] + (44, 45)
    got = fetcher.logprobs(fork, [77, 5])  # a fork: its two new positions, any token order
    assert server.requests == [(2, (77, 5))]
    assert np.abs(got - track(model, fork, [77, 5]).logprobs).max() < TOL
    server.requests.clear()
    got = fetcher.logprobs(longer, [5, 200])  # the longer prompt is still known for 5
    assert server.requests == [(8, (200,)), (8, (200,)), (5, (200,))]
    assert np.abs(got - track(model, longer, [5, 200]).logprobs).max() < TOL


@pytest.mark.parametrize("how", ["cancelled", "failed"])
def test_a_fetch_that_stops_caches_nothing(model, how):
    ids = ids_of(20, seed=2)
    server = PrefixServer(model, fail_on=2 if how == "failed" else None)
    fetcher = PrefixLogprobs(server, chunk=8)
    done = []
    with pytest.raises(Cancelled if how == "cancelled" else RemoteError):
        fetcher.logprobs(ids, [5], progress=lambda d, n: done.append(d),
                         cancelled=lambda: how == "cancelled" and bool(done))
    assert done == [8]  # one chunk came back before it stopped
    server.fail_on = None
    server.requests.clear()
    got = fetcher.logprobs(ids, [5])
    assert sum(n for n, _ in server.requests) == len(ids)  # all again: nothing half-kept
    assert np.abs(got - track(model, ids, [5]).logprobs).max() < TOL


def test_ranks_are_exact_inside_the_listed_top_k_and_a_lower_bound_below_it(model):
    ids, k = ids_of(30, seed=4), 10
    tokens = [5, 77, 150, ids[10]]  # the last: the prompt's own next token after position 9
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([list(ids)])).logits[0].float(), -1)
    want = track(model, ids, tokens)
    rows = []
    for i in range(len(ids)):  # what a server sends: its top-K, and the next prompt token's rank
        pairs = list(enumerate(lp[i].tolist()))
        known = ()
        if i + 1 < len(ids):
            nxt = ids[i + 1]
            known = ((nxt, float(lp[i, nxt]), int(want_rank(lp[i], nxt))),)
        rows.append(make_distribution(pairs, V, keep=k, known=known))
    ranks, bound = ranks_from_rows(rows, tokens, want.logprobs)
    assert bound.any() and (~bound).any()
    assert np.array_equal(ranks[~bound], want.ranks[~bound])
    assert not bound[9, 3] and ranks[9, 3] == want.ranks[9, 3]  # known at any rank
    assert (ranks[bound] == k + 1).all() and (want.ranks[bound] > k).all()


def want_rank(row: torch.Tensor, token: int) -> int:
    return 1 + int((row > row[token]).sum())
