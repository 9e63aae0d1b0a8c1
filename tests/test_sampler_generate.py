"""The sampler against transformers' own generate: p_final equals the softmax of the
scores generate reports for the same settings, on the embedded model and on a tiny random
model; temperature 0 equals greedy generate; seeded sampling reproduces itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_model
from transformers import AutoModelForCausalLM, GenerationConfig, LogitsProcessor

from explorer.config import EMBEDDED_MODEL_DIR
from explorer.sampling import (
    NEUTRAL,
    PRESETS,
    SamplingSettings,
    distributions,
    draw,
    from_generation_config,
    model_defaults,
    presence_frequency_penalty,
)

GRID = [
    dict(),
    dict(temperature=0.7),
    dict(temperature=1.6),
    dict(top_k=5),
    dict(top_k=1),
    dict(top_p=0.9),
    dict(top_p=0.3),
    dict(min_p=0.1),
    dict(repetition_penalty=1.3),
    dict(repetition_penalty=0.8, temperature=0.5),
    dict(temperature=0.7, top_p=0.8, repetition_penalty=1.05),
    dict(temperature=1.3, top_k=40, top_p=0.95, min_p=0.05),
    dict(temperature=0.9, presence_penalty=0.8, frequency_penalty=0.5),
    dict(temperature=1.1, top_p=0.7, repetition_penalty=1.2, presence_penalty=-0.5, frequency_penalty=1.5),
]
STEPS = 6


class OpenAIPenalty(LogitsProcessor):
    """Our presence/frequency penalty as a processor handed to generate(logits_processor=...),
    which runs it after generate's own processors and before its warpers."""

    def __init__(self, prompt_len: int, presence: float, frequency: float):
        self.prompt_len, self.presence, self.frequency = prompt_len, presence, frequency

    def __call__(self, input_ids, scores):
        return presence_frequency_penalty(scores, input_ids[0].tolist(), self.prompt_len,
                                          self.presence, self.frequency)


@pytest.fixture(scope="module")
def embedded():
    if not (EMBEDDED_MODEL_DIR / "config.json").exists():
        pytest.skip("embedded model not present")
    return AutoModelForCausalLM.from_pretrained(EMBEDDED_MODEL_DIR, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("llama", 320, seed=2)


def prompt_for(model) -> list[int]:
    vocab = model.config.vocab_size
    rng = np.random.default_rng(0)
    ids = rng.integers(2, vocab, size=12).tolist()
    return ids + ids[:4]  # repeats, so the repetition penalty has work to do


def generate(model, ids, settings: SamplingSettings, *, sample: bool, steps: int = STEPS, **extra):
    s = settings
    processors = []
    if s.presence_penalty or s.frequency_penalty:
        processors.append(OpenAIPenalty(len(ids), s.presence_penalty, s.frequency_penalty))
    knobs = dict(do_sample=True, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                 min_p=s.min_p) if sample else dict(do_sample=False)
    with torch.no_grad():
        return model.generate(
            torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=steps, repetition_penalty=s.repetition_penalty,
            logits_processor=processors, output_scores=True, output_logits=True,
            return_dict_in_generate=True, pad_token_id=0, **knobs, **extra)


def check_against_generate(model, change: dict):
    settings = NEUTRAL.with_changes(**change)
    ids = prompt_for(model)
    torch.manual_seed(1)
    out = generate(model, ids, settings, sample=True)
    seq = out.sequences[0].tolist()
    assert len(out.scores) >= 1
    for step, (raw, scores) in enumerate(zip(out.logits, out.scores)):
        so_far = seq[: len(ids) + step]
        mine = distributions(raw[0], so_far, len(ids), settings)
        want = torch.softmax(scores[0].float(), -1).numpy()
        assert np.abs(mine.p_final - want).max() < 1e-5, (change, step)
        assert np.array_equal(mine.p_final > 0, want > 0)
        assert mine.p_final[seq[len(ids) + step]] > 0  # generate's pick is one we keep


@pytest.mark.parametrize("change", GRID, ids=[str(c) or "neutral" for c in GRID])
def test_p_final_matches_generate_tiny(tiny, change):
    check_against_generate(tiny, change)


@pytest.mark.parametrize("change", GRID, ids=[str(c) or "neutral" for c in GRID])
def test_p_final_matches_generate_embedded(embedded, change):
    check_against_generate(embedded, change)


def test_generate_logits_are_the_models(embedded):
    """The raw rows fed to the sampler above are the model's logits (a full forward)."""
    ids = prompt_for(embedded)
    out = generate(embedded, ids, NEUTRAL, sample=False, steps=3)
    seq = out.sequences[0].tolist()
    with torch.no_grad():
        full = embedded(torch.tensor([seq])).logits[0]
    for step, raw in enumerate(out.logits):
        assert torch.allclose(raw[0], full[len(ids) + step - 1], atol=1e-4)


def test_model_generation_config_defaults_match_generate(tiny):
    """from_generation_config gives the distribution generate samples from when told
    nothing but the model's generation_config (here top_k falls back to 50)."""
    ids = prompt_for(tiny)
    saved = tiny.generation_config
    tiny.generation_config = GenerationConfig(do_sample=True, temperature=0.8, top_p=0.95,
                                              pad_token_id=0)
    try:
        out = tiny.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                            max_new_tokens=3, output_scores=True, output_logits=True,
                            return_dict_in_generate=True)
        settings = from_generation_config(tiny.generation_config)
    finally:
        tiny.generation_config = saved
    assert settings.top_k == 50
    seq = out.sequences[0].tolist()
    for step, (raw, scores) in enumerate(zip(out.logits, out.scores)):
        mine = distributions(raw[0], seq[: len(ids) + step], len(ids), settings).p_final
        assert np.abs(mine - torch.softmax(scores[0], -1).numpy()).max() < 1e-5


def test_model_defaults(tiny, embedded):
    # No generation_config.json: neutral. The embedded model's file says do_sample false,
    # so it starts greedy, as generate would (its top_k is transformers' fallback 50).
    assert model_defaults(tiny) == NEUTRAL
    assert model_defaults(embedded) == PRESETS["greedy"].with_changes(top_k=50)


def autoregress(model, ids, settings: SamplingSettings, seed: int, steps: int) -> list[int]:
    """Our sampler driving the model one cached decode step at a time."""
    from transformers import DynamicCache

    seq, cache = list(ids), DynamicCache()
    with torch.no_grad():
        logits = model(torch.tensor([seq]), past_key_values=cache, use_cache=True).logits[0, -1]
        for _ in range(steps):
            p_final = distributions(logits, seq, len(ids), settings).p_final
            token = draw(p_final, seed, len(seq))
            seq.append(token)
            logits = model(torch.tensor([[token]]), past_key_values=cache, use_cache=True).logits[0, -1]
    return seq[len(ids):]


@pytest.mark.parametrize("change", [dict(), dict(repetition_penalty=1.3),
                                    dict(presence_penalty=1.0, frequency_penalty=0.5)])
@pytest.mark.parametrize("which", ["tiny", "embedded"])
def test_temperature_zero_equals_greedy_generate(request, which, change):
    model = request.getfixturevalue(which)
    settings = NEUTRAL.with_changes(temperature=0, **change)
    ids = prompt_for(model)
    out = generate(model, ids, settings, sample=False, steps=20)
    assert autoregress(model, ids, settings, seed=0, steps=20) == out.sequences[0, len(ids):].tolist()


def test_seeded_sampling_reproduces_itself(embedded):
    ids = prompt_for(embedded)
    settings = NEUTRAL.with_changes(temperature=1.2, top_p=0.95)
    first = autoregress(embedded, ids, settings, seed=7, steps=24)
    assert autoregress(embedded, ids, settings, seed=7, steps=24) == first
    assert autoregress(embedded, ids, settings, seed=8, steps=24) != first
    # A step depends on the seed, its position and p_final only: resume half way (no
    # presence/frequency penalty here, so where the prompt ends does not matter).
    assert autoregress(embedded, ids + first[:10], settings, seed=7, steps=14) == first[10:]
