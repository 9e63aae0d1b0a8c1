"""The remote backend against a real llama-server serving the embedded model (converted to
f32 GGUF), compared with the local transformers engine on the same weights."""

from __future__ import annotations

import pytest
from app_fixtures import embedded_engine

from explorer.backend import Backend, Cancelled, Unavailable
from explorer.remote import LlamaCppBackend, open_remote
from explorer.sampling.settings import SamplingSettings

TOL = 1e-4  # the bound; with an f32 KV cache and no flash attention, ~1e-5
TEXTS = ["Once upon a time, there was a little", "The cat sat on the mat.\n\tIt was",
         "é ü 東京 🙂 x", "<|im_start|>user\nhi<|im_end|>"]


@pytest.fixture(scope="module")
def remote(llama_url):
    backend = open_remote(llama_url, tokens_to_show=20)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def engine():
    return embedded_engine()


def test_detects_llama_cpp_and_satisfies_the_protocol(remote):
    assert isinstance(remote, LlamaCppBackend) and isinstance(remote, Backend)
    caps = remote.capabilities
    assert caps.kind == "llama.cpp" and not caps.prompt_logprobs and not caps.influence
    assert remote.info.vocab_size == 8192
    with pytest.raises(Unavailable, match="not available on this backend \\(llama.cpp\\)"):
        remote.influence("k")
    with pytest.raises(Unavailable, match="token trees is not available on this backend \\(llama.cpp\\)"):
        remote.grow_tree("k", None)


@pytest.mark.parametrize("text", TEXTS)
def test_tokenisation_equals_the_local_tokenizer(remote, engine, text):
    ids = remote.encode(text)
    assert ids == engine.encode(text)
    assert remote.decode(ids) == engine.decode(ids)
    assert [remote.token_text(t) for t in ids] == [engine.token_text(t) for t in ids]


def test_next_token_top_k_equals_the_engine(remote, engine):
    ids = tuple(engine.encode(TEXTS[0]))
    got = remote.sync("p", ids)[-1]
    want = engine.sync("llama-p", ids)[-1]
    assert [c.token_id for c in got.top] == [c.token_id for c in want.top[:20]]
    worst = max(abs(a.logprob - b.logprob) for a, b in zip(got.top, want.top))
    assert worst < TOL, worst
    assert [c.text for c in got.top] == [c.text for c in want.top[:20]]
    assert got.next_entropy_bound and got.next_entropy <= want.next_entropy + 1e-5


def test_appends_through_the_prompt_cache_equal_the_engine(remote, engine):
    ids = tuple(engine.encode("The little dog"))
    remote.sync("a", ids)
    for step in range(5):
        ids = ids + (remote.records("a")[-1].top[step % 2].token_id,)
        got = remote.sync("a", ids)
        want = engine.sync("llama-a", ids)
        assert abs(got[-1].logprob - want[-1].logprob) < TOL and got[-1].rank == want[-1].rank
        assert [c.token_id for c in got[-1].top] == [c.token_id for c in want[-1].top[:20]]
        assert max(abs(a.logprob - b.logprob) for a, b in zip(got[-1].top, want[-1].top)) < TOL
    # sync itself fetched no per-position values for the loaded prefix:
    assert got[1].logprob is None
    # every appended step keeps the distribution it was chosen from (trace reads it)
    assert all(len(r.top) == 20 for r in got[-6:])


def test_prompt_values_are_fetched_lazily_exact_with_progress_and_cached(remote, engine):
    ids = tuple(engine.encode(TEXTS[1]))
    records = remote.sync("lazy", ids)
    assert all(r.logprob is None for r in records[1:-1])  # nothing fetched by sync
    seen = []
    full = remote.prompt_values("lazy", progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, len(ids) - 1) and seen[-1] == (len(ids) - 1, len(ids) - 1)
    want = engine.sync("llama-lazy", ids)
    for g, w in zip(full[1:], want[1:]):
        assert abs(g.logprob - w.logprob) < TOL and g.rank == w.rank
        # All V came back: the entropy is exact, not a bound.
        assert not g.entropy_bound and abs(g.entropy - w.entropy) < 1e-4
    assert remote.records("lazy") == full
    again = []
    assert remote.prompt_values("lazy", progress=lambda d, t: again.append((d, t))) == full
    assert again == []  # cached: no request


def test_prompt_values_can_be_cancelled_and_resume(remote, engine):
    ids = tuple(engine.encode(TEXTS[0] + " girl who lived"))
    remote.sync("c", ids)
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        remote.prompt_values("c", cancelled=cancelled)
    assert remote.records("c")[2].logprob is None  # nothing half-applied
    steps = []
    full = remote.prompt_values("c", progress=lambda d, t: steps.append(t))
    assert steps[0] == len(ids) - 1 - 3  # the three fetched before the cancel are kept
    assert all(r.logprob is not None for r in full[1:])


def test_greedy_sampling_on_the_server_equals_local_greedy(remote, engine):
    ids = tuple(engine.encode("Once upon a time"))
    for _ in range(8):
        token = remote.sample(ids, SamplingSettings(temperature=0))
        assert token == engine.sync("llama-g", ids)[-1].top[0].token_id
        ids = ids + (token,)
        remote.sync("g", ids)
