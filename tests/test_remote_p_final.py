"""p_final from a real vLLM server started with `--logprobs-mode processed_logprobs` (the
log-probs its sampler draws from; masked tokens come back as -9999 and count as excluded),
against the local sampler pipeline on the same model's logits row (explorer.sampling)."""

from __future__ import annotations

import math

import pytest
from app_fixtures import SIZE, embedded_engine, screen_text, settle
from test_remote_sampling import server_app

from explorer.sampling import distributions
from explorer.sampling.settings import SamplingSettings
from explorer.session.sampler import entropy

TOL = 1e-4

# Settings whose order of operations is the same on vLLM and in transformers' generate
# (min-p runs before top-k/top-p on vLLM, after them here; the presence/frequency bias
# runs before the repetition penalty there, after it here: see the README).
CASES = {
    "top-k": dict(temperature=0.7, top_k=12),
    "top-p": dict(temperature=1.3, top_p=0.8),
    "min-p": dict(temperature=1.0, min_p=0.05),
    "repetition": dict(temperature=0.9, repetition_penalty=1.3, top_k=50),
    "presence-frequency": dict(temperature=1.0, presence_penalty=0.8, frequency_penalty=0.6),
    "greedy": dict(temperature=0),
}


@pytest.fixture(scope="module")
def prompt(vllm_remote):
    """A prompt plus a few appended tokens (the penalties count those)."""
    ids = tuple(vllm_remote.encode("The cat sat on the mat. The cat"))
    return ids, ids + tuple(vllm_remote.encode_plain(" sat on the the mat"))  # repeats to penalise


def test_the_test_server_reports_processed_logprobs(vllm_remote):
    assert vllm_remote.processed


@pytest.mark.parametrize("name", CASES)
def test_p_final_equals_the_local_sampler(vllm_remote, prompt, name):
    original, ids = prompt
    settings = SamplingSettings(seed=3, **CASES[name])
    engine = embedded_engine()
    engine.sync("p-final", ids)
    want = distributions(engine.next_logits("p-final"), ids, len(original), settings).p_final
    records = vllm_remote.sync(name, ids)
    candidates = [c.token_id for c in records[-1].top]
    drawn = vllm_remote.draw(name, settings, len(original), candidates)
    got = [drawn.p_final.get(t, 0.0) for t in candidates]
    worst = max(abs(g - float(want[t])) for g, t in zip(got, candidates))
    assert worst < TOL, (name, worst)
    assert want[drawn.token_id] > 0  # the server drew a token our sampler keeps
    if name == "top-k":
        assert sum(p > 0 for p in got) == 12  # the excluded ones come back as -9999: 0
    h = entropy(want)
    if drawn.entropy_final_bound:
        assert drawn.entropy_final <= h + 1e-5
    else:
        assert abs(drawn.entropy_final - h) < TOL
    if name in ("top-k", "greedy"):  # p_final keeps fewer tokens than vLLM lists: exact
        assert not drawn.entropy_final_bound


async def test_the_app_shows_the_servers_p_final_column(vllm_url):
    app = server_app(vllm_url, temperature=0.7, top_k=5)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = app.main.book.current.ids
        engine = embedded_engine()
        engine.sync("p-final-app", ids)
        want = distributions(engine.next_logits("p-final-app"), ids, len(ids), app.main.sampler.settings).p_final
        shown = app.main.sampler_drawing()["sampler"]
        top = [c.token_id for c in app.main.table.candidates]
        assert max(abs(p - float(want[t])) for p, t in zip(shown.p_final, top)) < TOL
        assert sum(p > 0 for p in shown.p_final) == 5
        text = screen_text(app)
        assert "p_final" in text and "excluded" in text and "top-k 5" in text
        assert not math.isnan(shown.entropy_final) and not shown.entropy_final_bound
