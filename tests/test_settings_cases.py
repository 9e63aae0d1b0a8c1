"""Issue 22, item 5 and the settings part of 9: each config value, flag and constraint
that used to pass validation and fail later (a TypeError, an overflow, "p_final has no
probability mass", or a refusal only after the model load) is one sentence naming the key
and what is allowed, exit code 2, before any model loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_cli_checks import COMMANDS, loads, refused  # noqa: F401 - the fixture, used by name

from explorer.config import EMBEDDED_MODEL_DIR, ConfigError, load_settings
from explorer.sampling import SamplingSettings, distributions
from explorer.sampling.constraint import Constraint, ConstraintError, ConstraintSpec

CASES = [
    ("model = 5\n", "[model] should be a table of keys"),
    ("[model]\nparts = 5\n", "model.parts should be a table"),
    *[(f"{section} = 5\n", f"[{section}] should be a table")
      for section in ("display", "sampling", "keys", "server", "tree", "attribution", "prompts")],
    ("[server]\nconnect_timeout = nan\n",
     "server.connect_timeout must be a number of seconds above 0 and at most 3600, not nan."),
    ("[server]\nread_timeout = inf\n",
     "server.read_timeout must be a number of seconds above 0 and at most 86400, not inf."),
    ("[server]\nconnect_timeout = 1e308\n", "server.connect_timeout must be a number of seconds above 0"),
    ("[sampling]\ntemperature = 1e-300\n", "Temperature must be 0 (greedy) or between 0.001 and 1000"),
    ("[sampling]\nrepetition_penalty = 1e-300\n", "The repetition penalty must be between 0.001 and 1000"),
    ("[display]\ntokens_to_show = -1\n", "display.tokens_to_show must be between 1 and 1000, not -1."),
    ("[display]\ntokens_to_show = 100000000\n", "display.tokens_to_show must be between 1 and 1000"),
    # A key may hold a newline; the message stays one line.
    ('[model]\n"a\\nb" = 1\n', 'unknown key model."a\\nb".'),
    ('[model.device_map]\n"lm\\nhead" = 1.5\n', 'model.device_map."lm\\nhead" should name a device'),
]


@pytest.mark.parametrize("text, words", CASES)
def test_each_config_case_is_one_sentence(tmp_path, text, words):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert words in message and "\n" not in message and message.endswith("."), message


@pytest.mark.parametrize("command", ["app", "trace", "tree"])
@pytest.mark.parametrize("text, words", CASES[:1] + CASES[9:12])
def test_each_command_refuses_them_before_the_model_loads(tmp_path, capsys, loads, command, text, words):
    path = tmp_path / "config.toml"
    path.write_text(text)
    assert words in refused([*COMMANDS[command], "--config", str(path)], capsys, loads)


@pytest.mark.parametrize("command", ["app", "trace"])
@pytest.mark.parametrize("flag, words", [
    ("--temperature", "--temperature: Temperature must be 0 (greedy) or between 0.001 and 1000, not '1e-300'."),
    ("--repetition-penalty", "--repetition-penalty: The repetition penalty must be between 0.001 and 1000"),
])
def test_underflowing_sampler_flags_are_refused_before_the_model_loads(capsys, loads, command, flag, words):
    assert words in refused([*COMMANDS[command], flag, "1e-300"], capsys, loads)


@pytest.mark.parametrize("knob", ["temperature", "repetition_penalty"])
@pytest.mark.parametrize("value", [1e-3, 1e3])
def test_p_final_keeps_its_mass_at_both_ends_of_the_range(knob, value):
    """The range's ends against float64 numpy: fp32 logits of a real spread (|z| up to
    ~40) scaled by 1e3 either way still give a distribution that sums to 1."""
    rng = np.random.default_rng(0)
    z64 = rng.normal(0, 8, 5000)
    z64[:3] = (40.0, 39.5, -40.0)
    ids = [0, 7, 2]  # token 0 and 2 were seen: the penalty applies to them
    d = distributions(torch.tensor(z64, dtype=torch.float32), ids, len(ids),
                      SamplingSettings(**{knob: value}))
    p = np.asarray(d.p_final, dtype=np.float64)
    assert np.isfinite(p).all() and p.sum() == pytest.approx(1.0, abs=1e-5)
    scaled = np.float32(z64).astype(np.float64)
    if knob == "temperature":
        scaled = scaled / value
    else:  # transformers' definition: divide positive logits, multiply negative ones
        seen = np.array(ids)
        scaled[seen] = np.where(scaled[seen] > 0, scaled[seen] / value, scaled[seen] * value)
    expect = np.exp(scaled - scaled.max())
    expect /= expect.sum()
    assert np.abs(p - expect).max() < 1e-4


@pytest.mark.parametrize("argv, words", [
    (["--regex", "("], "The regex is not valid: "),
    (["--grammar", "GRAMMAR"], "The grammar is not valid: "),
    (["--json-schema", "SCHEMA"], "The JSON schema is not valid: "),
])
def test_a_bad_constraint_is_refused_before_the_model_loads(tmp_path, capsys, loads, argv, words):
    (tmp_path / "g.lark").write_text("start: foo\n")
    (tmp_path / "s.json").write_text('{"type": "bogus"}')
    argv = [{"GRAMMAR": str(tmp_path / "g.lark"), "SCHEMA": str(tmp_path / "s.json")}.get(a, a) for a in argv]
    assert words in refused([*COMMANDS["trace"], *argv], capsys, loads)


@pytest.mark.skipif(not (EMBEDDED_MODEL_DIR / "config.json").exists(), reason="embedded model not built")
def test_a_constraint_that_matches_nothing_is_refused_when_compiled():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR)
    with pytest.raises(ConstraintError, match="The regex matches no text at all"):
        Constraint.for_tokenizer(ConstraintSpec("regex", r"[^\s\S]"), tok, len(tok))
    with pytest.raises(ConstraintError, match="matches no text at all"):
        Constraint.for_tokenizer(ConstraintSpec("regex", r"a[^\s\S]"), tok, len(tok))
    # Matching only the empty text is a real (if short) language: kept, and complete at once.
    assert Constraint.for_tokenizer(ConstraintSpec("regex", "x{0}"), tok, len(tok)).is_complete([])


def test_a_models_extreme_generation_config_is_taken_to_the_range_not_refused():
    """A model's own file is not the user's typo: opening the model must not fail on it."""
    from transformers import GenerationConfig

    from explorer.sampling import from_generation_config

    cold = from_generation_config(GenerationConfig(do_sample=True, temperature=1e-5,
                                                   repetition_penalty=1e5))
    assert (cold.temperature, cold.repetition_penalty) == (0.0, 1e3) and cold.greedy
    assert from_generation_config(GenerationConfig(do_sample=True, temperature=1e4)).temperature == 1e3
