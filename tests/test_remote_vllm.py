"""The remote backend against a real vLLM server serving the embedded model, compared with
the local transformers engine on the same weights (fp32 both sides)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from app_fixtures import embedded_engine

from explorer.backend import Backend
from explorer.remote import VLLMBackend
from explorer.sampling.settings import SamplingSettings

TOL = 1e-4  # the bound; measured differences are ~1e-6
TEXTS = ["Once upon a time, there was a little", "The cat sat on the mat.\n\tIt was", "é ü 東京 🙂 x"]


@pytest.fixture(scope="module")
def engine():
    return embedded_engine()


def _close_records(remote_records, local_records, *, prompt: bool = True):
    assert [r.token_id for r in remote_records] == [r.token_id for r in local_records]
    worst = 0.0
    for got, want in zip(remote_records, local_records):
        if prompt and want.logprob is not None:
            worst = max(worst, abs(got.logprob - want.logprob))
            assert got.rank == want.rank
        assert got.logprob is None or want.logprob is not None
    last_got, last_want = remote_records[-1], local_records[-1]
    k = len(last_got.top)
    assert [c.token_id for c in last_got.top] == [c.token_id for c in last_want.top[:k]]
    for a, b in zip(last_got.top, last_want.top):
        worst = max(worst, abs(a.logprob - b.logprob))
    assert worst < TOL, worst
    return worst


def test_detects_vllm_and_satisfies_the_protocol(vllm_remote):
    assert isinstance(vllm_remote, VLLMBackend)
    assert isinstance(vllm_remote, Backend)
    caps = vllm_remote.capabilities
    assert caps.kind == "vLLM" and not caps.influence and not caps.lens and not caps.exact_entropy
    assert vllm_remote.info.vocab_size == 8192
    assert caps.max_top_k == 64  # the test server runs with --max-logprobs 64
    assert "vLLM at 127.0.0.1:" in vllm_remote.info.device


@pytest.mark.parametrize("text", TEXTS)
def test_tokenisation_equals_the_local_tokenizer(vllm_remote, engine, text):
    ids = vllm_remote.encode(text)
    assert ids == engine.encode(text)
    assert vllm_remote.decode(ids) == engine.decode(ids)


def test_prompt_logprobs_ranks_and_top_k_equal_the_engine(vllm_remote, engine):
    ids = tuple(engine.encode(TEXTS[0] + " girl who lived in a small house near the"))
    local = engine.sync("vllm-ref", ids)
    got = vllm_remote.sync("p", ids)
    _close_records(got, local)
    # Entropy from a top-20 list is a lower bound of the true one, and marked as such.
    for g, w in zip(got[1:], local[1:]):
        assert g.entropy_bound and g.entropy <= w.entropy + 1e-5
    assert got[-1].next_entropy_bound and got[-1].next_entropy <= local[-1].next_entropy + 1e-5
    assert [c.text for c in got[-1].top] == [c.text for c in local[-1].top[:20]]


def test_appends_pops_and_forks_keep_equal_numbers(vllm_remote, engine):
    ids = tuple(engine.encode("The little dog ran"))
    vllm_remote.sync("a", ids)
    for step in range(4):
        top = vllm_remote.records("a")[-1].top
        ids = ids + (top[step % 3].token_id,)
        got = vllm_remote.sync("a", ids)
        _close_records(got, engine.sync("vllm-a", ids))
    popped = vllm_remote.sync("a", ids[:-2])
    assert popped == vllm_remote.records("a") and len(popped) == len(ids) - 2
    _close_records(popped, engine.sync("vllm-a", ids[:-2]))
    fork = vllm_remote.sync("b", ids[:-1] + (vllm_remote.records("a")[-1].top[5].token_id,))
    _close_records(fork, engine.sync("vllm-b", ids[:-1] + (fork[-1].token_id,)))


def test_a_token_outside_the_top_k_is_still_exact(vllm_remote, engine):
    ids = tuple(engine.encode("Once upon a"))
    vllm_remote.sync("far", ids)
    far = engine.sync("vllm-far", ids)[-1]
    rare = 4321  # far below the top 20
    local = engine.sync("vllm-far", ids + (rare,))
    got = vllm_remote.sync("far", ids + (rare,))
    assert got[-1].rank == local[-1].rank > 20
    assert abs(got[-1].logprob - local[-1].logprob) < TOL
    assert far.top  # the engine agreed on the prefix


def test_greedy_sampling_on_the_server_equals_local_greedy(vllm_remote, engine):
    ids = tuple(engine.encode("Once upon a time"))
    greedy = SamplingSettings(temperature=0)
    for _ in range(8):
        token = vllm_remote.sample(ids, greedy)
        assert token == engine.sync("vllm-g", ids)[-1].top[0].token_id
        ids = ids + (token,)
        vllm_remote.sync("g", ids)


def test_seeded_sampling_is_reproducible(vllm_remote):
    ids = tuple(vllm_remote.encode("Once upon a time"))
    hot = SamplingSettings(temperature=1.2, top_p=0.9, seed=7)
    draws = [vllm_remote.sample(ids, hot) for _ in range(3)]
    assert len(set(draws)) == 1


def test_bad_ids_get_one_sentence(vllm_remote):
    with pytest.raises(Exception) as err:
        vllm_remote.sync("bad", (1, 2, 99999))
    assert "outside the vocabulary" in str(err.value) and "\n" not in str(err.value)


def test_entropy_bound_is_a_true_lower_bound_of_the_full_entropy(vllm_remote, engine):
    ids = tuple(engine.encode(TEXTS[1]))
    got = vllm_remote.sync("h", ids)
    local = engine.sync("vllm-h", ids)
    gaps = [w.next_entropy - g.next_entropy for g, w in zip(got[:-1], local[:-1])]
    assert min(gaps) >= -1e-5
    assert all(math.isfinite(g.next_entropy) for g in got)
    assert np.mean(gaps) < np.mean([w.next_entropy for w in local])  # not a trivial zero


def test_tracked_tokens_at_any_rank_equal_the_engine(vllm_remote, engine):
    ids = tuple(engine.encode("Once upon a time, there was"))
    chosen = [5, 300, 4321, 8191]  # from the top of the table to the very bottom
    engine.sync("vllm-t", ids)
    want = engine.tracked("vllm-t", chosen).logprobs[-1]  # row -1: after the last position
    got = vllm_remote.tracked_next(ids, chosen)
    assert max(abs(got[t] - float(w)) for t, w in zip(chosen, want)) < TOL
