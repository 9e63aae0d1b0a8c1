"""[attribution] n_steps and --attribution-steps reach the engine's integrated gradients."""

from __future__ import annotations

import pytest
from app_fixtures import requires_model

from explorer.backend import open_backend
from explorer.cli import parse_args, settings_from_args
from explorer.config import ConfigError, load_settings


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_config_key_and_flag(tmp_path):
    path = write(tmp_path, "[attribution]\nn_steps = 64\n")
    assert load_settings(path).attribution.n_steps == 64
    args = parse_args(["--config", str(path)])
    assert settings_from_args(args).attribution.n_steps == 64
    args = parse_args(["--config", str(path), "--attribution-steps", "8"])
    assert settings_from_args(args).attribution.n_steps == 8
    assert load_settings(write(tmp_path, "")).attribution.n_steps == 32
    assert load_settings(write(tmp_path, "")).attribution.baseline == "mean-keep-first"


@pytest.mark.parametrize("text, message", [
    ("[attribution]\nn_steps = 0\n", "attribution.n_steps must be between 1 and 4096, not 0."),
    ("[attribution]\nn_steps = 1.5\n", "attribution.n_steps should be an integer"),
    ("[attribution]\nsteps = 8\n", "unknown key attribution.steps"),
])
def test_bad_config_is_one_sentence(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings(write(tmp_path, text))


@requires_model
def test_the_engine_uses_the_configured_steps(tmp_path):
    path = write(tmp_path, '[model]\nname = "embedded"\n[attribution]\nn_steps = 6\nbaseline = "zero"\n')
    backend = open_backend(settings_from_args(parse_args(["--config", str(path)])))
    try:
        ids = backend.encode("The quick brown fox")
        target = backend.sync("p", ids)[-1].top[0].token_id
        assert backend.attribution("p", target, "integrated_gradients").n_steps == 6
        assert backend.attribution("p", target, "integrated_gradients", n_steps=3).n_steps == 3
    finally:
        backend.close()
