"""The sampler without a model: settings, presets, flags, config.toml, the penalties
against OpenAI's formula written out directly, and the seeded draw."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.config import ConfigError, load_settings
from explorer.sampling import (
    NEUTRAL,
    PRESETS,
    SamplingError,
    SamplingSettings,
    add_sampling_flags,
    apply_preset,
    distributions,
    draw,
    final_scores,
    from_generation_config,
    presence_frequency_penalty,
    sampling_overrides,
    sampling_preset,
)


def openai_penalised(logits: np.ndarray, appended: list[int], presence: float, frequency: float):
    """OpenAI's API reference, term by term:
    mu[j] -> mu[j] - c[j] * alpha_frequency - float(c[j] > 0) * alpha_presence."""
    out = logits.astype(np.float64).copy()
    for j in range(out.size):
        c = appended.count(j)
        out[j] = out[j] - c * frequency - float(c > 0) * presence
    return out


@pytest.mark.parametrize("presence,frequency", [(0.5, 0.0), (0.0, 0.7), (1.5, -0.4), (-2.0, 2.0)])
def test_presence_frequency_match_openai(presence, frequency):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=40).astype(np.float32) * 3
    prompt = [5, 5, 7, 9]  # prompt tokens never count
    appended = [7, 7, 7, 11, 3, 11, 39]
    got = presence_frequency_penalty(torch.tensor(logits)[None], prompt + appended, len(prompt),
                                     presence, frequency)[0].numpy()
    want = openai_penalised(logits, appended, presence, frequency)
    assert np.allclose(got, want, atol=1e-5)
    assert got[5] == logits[5] and got[9] == logits[9]  # in the prompt only: untouched


def test_penalties_run_before_temperature_and_greedy_keeps_them():
    logits = torch.tensor([2.0, 1.9, 0.0, -1.0])
    s = NEUTRAL.with_changes(temperature=0.5, presence_penalty=1.0)
    # Token 0 was appended, so it pays 1.0 on the raw logit, then all is divided by 0.5.
    want = torch.softmax(torch.tensor([1.0, 1.9, 0.0, -1.0]) / 0.5, -1).numpy()
    got = distributions(logits, [2, 0], 1, s).p_final
    assert np.allclose(got, want, atol=1e-6)
    greedy = distributions(logits, [2, 0], 1, s.with_changes(temperature=0)).p_final
    assert greedy.tolist() == [0.0, 1.0, 0.0, 0.0]  # the penalty moved the argmax


def test_p_base_is_softmax_and_excluded_tokens_are_zero():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0])
    d = distributions(logits, [0], 1, NEUTRAL.with_changes(top_k=2))
    assert np.allclose(d.p_base, torch.softmax(logits, -1).numpy(), atol=1e-7)
    assert d.kept.tolist() == [True, True, False, False, False]
    assert np.allclose(d.p_final[:2], d.p_base[:2] / d.p_base[:2].sum(), atol=1e-6)
    neutral = distributions(logits, [0], 1, NEUTRAL)
    assert np.allclose(neutral.p_final, neutral.p_base, atol=1e-7)


def test_final_scores_leave_the_input_alone():
    logits = torch.tensor([1.0, -2.0, 0.5])
    before = logits.clone()
    final_scores(logits, [0, 1, 1], 1, NEUTRAL.with_changes(repetition_penalty=1.5,
                                                             frequency_penalty=1.0, temperature=0.3))
    assert torch.equal(logits, before)


@pytest.mark.parametrize("change,words", [
    (dict(temperature=-0.1), "Temperature must be 0 (greedy) or between 0.001 and 1000"),
    (dict(top_p=0), "Top-p must be above 0 and at most 1"),
    (dict(top_p=1.01), "Top-p must be above 0 and at most 1"),
    (dict(top_k=-2), "Top-k must be 0 or -1 (off) or more"),  # -1 is off (vLLM, Token Tracer)
    (dict(min_p=-0.5), "Min-p must be between 0 (off) and 1"),
    (dict(min_p=1.5), "Min-p must be between 0 (off) and 1"),
    (dict(temperature="hot"), "Temperature must be a number, not 'hot'"),
    (dict(top_k="3.5"), "Top-k must be a whole number"),
    (dict(repetition_penalty=0), "The repetition penalty must be between 0.001 and 1000"),
    (dict(presence_penalty=3), "The presence penalty must be between -2 and 2"),
    (dict(temperature=True), "Temperature must be a number"),
    (dict(temperature=float("inf")), "Temperature must be a finite number"),
    (dict(warmth=1), "'warmth' is not a sampler setting"),
])
def test_bad_values_get_one_sentence_and_change_nothing(change, words):
    before = NEUTRAL.with_changes(temperature=0.9)
    with pytest.raises(SamplingError) as err:
        before.with_changes(**change)
    message = str(err.value)
    assert message.startswith(words) and message.endswith(".") and message.count(". ") == 0
    assert before.temperature == 0.9


def test_text_values_from_a_panel_parse():
    s = NEUTRAL.with_changes(temperature=" 0.5", top_k="40", seed="17")
    assert (s.temperature, s.top_k, s.seed) == (0.5, 40, 17)
    assert NEUTRAL.with_changes(seed="random").seed is None


def test_presets():
    assert PRESETS["greedy"].greedy
    balanced = PRESETS["balanced"]
    assert (balanced.temperature, balanced.top_p, balanced.repetition_penalty) == (0.7, 0.8, 1.05)
    assert apply_preset(NEUTRAL.with_changes(seed=5, top_k=3), "creative") == PRESETS["creative"].with_changes(seed=5)
    with pytest.raises(SamplingError, match="no sampler preset 'wild'"):
        apply_preset(NEUTRAL, "wild")


def test_generation_config_defaults_follow_transformers():
    from transformers import GenerationConfig

    assert from_generation_config(None) == NEUTRAL
    # do_sample unset or false: generate is greedy (and still applies repetition_penalty).
    assert from_generation_config(GenerationConfig(repetition_penalty=1.2)) == SamplingSettings(
        temperature=0.0, top_k=50, repetition_penalty=1.2)
    # Qwen2.5-Instruct's file; top_k unset elsewhere falls back to transformers' 50.
    qwen = GenerationConfig(do_sample=True, temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05)
    assert from_generation_config(qwen) == SamplingSettings(temperature=0.7, top_k=20, top_p=0.8,
                                                            repetition_penalty=1.05)
    assert from_generation_config(GenerationConfig(do_sample=True, min_p=0.1)).top_k == 50


def test_cli_flags():
    parser = argparse.ArgumentParser()
    add_sampling_flags(parser)
    args = parser.parse_args(["--temperature", "0.3", "--top-k", "7", "--seed", "42", "--preset", "balanced"])
    assert sampling_overrides(args) == {"temperature": 0.3, "top_k": 7, "seed": 42}
    assert sampling_preset(args) == "balanced"
    assert sampling_overrides(parser.parse_args([])) == {}
    with pytest.raises(SamplingError, match=r"^--top-p: Top-p must be above 0"):
        sampling_overrides(parser.parse_args(["--top-p", "2"]))


def test_config_toml_sampling(tmp_path: Path):
    f = tmp_path / "c.toml"
    f.write_text('[sampling]\npreset = "balanced"\ntop_k = 12\nseed = 3\n')
    cfg = load_settings(f).sampling
    resolved = cfg.resolve(PRESETS["greedy"], {"temperature": 0.9})
    assert resolved == SamplingSettings(temperature=0.9, top_k=12, top_p=0.8,
                                        repetition_penalty=1.05, seed=3)
    f.write_text('[sampling]\ntop_p = 0\n')
    with pytest.raises(ConfigError, match=r"^config.toml \[sampling\]: Top-p must be above 0"):
        load_settings(f)
    f.write_text('[sampling]\npreset = "spicy"\n')
    with pytest.raises(ConfigError, match="preset must be"):
        load_settings(f)


def test_draw_follows_p_final_and_never_draws_excluded():
    p = np.array([0.5, 0.0, 0.3, 0.2, 0.0], dtype=np.float32)
    draws = np.array([draw(p, 11, pos) for pos in range(4000)])
    assert set(draws.tolist()) <= {0, 2, 3}
    freq = np.bincount(draws, minlength=5) / draws.size
    assert np.allclose(freq, p, atol=0.03)
    assert draw(p, 11, 123) == draw(p, 11, 123)
    assert [draw(p, 1, i) for i in range(30)] != [draw(p, 2, i) for i in range(30)]
    assert draw(np.eye(5, dtype=np.float32)[4], 0, 0) == 4  # a one-hot (greedy) row


def test_package_imports_without_torch():
    code = "import sys, explorer.sampling, explorer.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_kept_row_must_be_raw_logits_for_the_repetition_penalty():
    """Every knob but the repetition penalty ignores a constant shift of the logits, so a
    caller that keeps log-probs instead of logits gets p_final wrong exactly when the
    repetition penalty is on: keep the raw logits row."""
    logits = torch.tensor([2.5, 1.0, -0.5, 0.3, -2.0])
    shifted = torch.log_softmax(logits, -1)
    ids = [0, 3, 0]
    for change in (dict(temperature=0.6, top_p=0.9), dict(top_k=3, min_p=0.1),
                   dict(presence_penalty=0.7, frequency_penalty=0.4)):
        s = NEUTRAL.with_changes(**change)
        assert np.allclose(distributions(logits, ids, 1, s).p_final,
                           distributions(shifted, ids, 1, s).p_final, atol=1e-6)
    s = NEUTRAL.with_changes(repetition_penalty=1.5)
    assert not np.allclose(distributions(logits, ids, 1, s).p_final,
                           distributions(shifted, ids, 1, s).p_final, atol=1e-3)
