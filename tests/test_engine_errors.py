"""Errors a user can cause get one clear sentence (design.md, style.md)."""

import pytest
import torch
from torch import nn

from explorer.config import ModelSettings
from explorer.engine import Engine, EngineError, ModelLoadError, PromptTooLongError
from explorer.engine.parts import resolve_parts


def one_sentence(text: str) -> bool:
    return text.endswith(".") and ". " not in text.rstrip(".") and "\n" not in text


def test_uncached_model_offline_is_one_clear_sentence(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    name = "no-such-org/no-such-model-7b"
    with pytest.raises(ModelLoadError) as err:
        Engine.load(ModelSettings(name=name, device="cpu"))
    message = str(err.value)
    assert name in message and "network" in message and one_sentence(message), message


def test_missing_folder(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(ModelLoadError) as err:
        Engine.load(ModelSettings(name=str(folder), device="cpu"))
    assert str(folder) in str(err.value) and one_sentence(str(err.value))


def test_prompt_too_long(make_engine):
    engine = make_engine("gpt2")  # n_positions = 256
    with pytest.raises(PromptTooLongError) as err:
        engine.sync("k", [5] * 257)
    assert "257" in str(err.value) and "256" in str(err.value)
    with pytest.raises(ValueError):
        engine.sync("k", [])
    with pytest.raises(EngineError):
        engine.sync("k", [engine.info.vocab_size])


class Unknown(nn.Module):
    """An architecture the table does not know."""

    def __init__(self):
        super().__init__()
        self.decoder = nn.Module()
        self.decoder.blocks = nn.ModuleList([nn.Linear(4, 4)])
        self.decoder.out_norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 10)
        self.config = type("Config", (), {})()


def test_parts_refused_when_nothing_matches():
    with pytest.raises(ModelLoadError) as err:
        resolve_parts(Unknown())
    assert "[model.parts]" in str(err.value) and "Unknown" in str(err.value)


def test_parts_override():
    model = Unknown()
    parts = resolve_parts(model, {"layers": "decoder.blocks", "final_norm": "decoder.out_norm",
                                  "lm_head": "head"})
    assert parts.final_norm is model.decoder.out_norm and parts.lm_head is model.head
    assert parts.n_layers == 1 and parts.softcap is None
    with pytest.raises(ModelLoadError):
        resolve_parts(model, {"final_norm": "decoder.nope"})
    with pytest.raises(ModelLoadError):
        resolve_parts(model, {"norm": "decoder.out_norm"})


def test_logit_scale_override():
    """[model.parts] logit_scale / logit_divisor name a constant the forward applies."""
    model = Unknown()
    model.scale = 4.0
    paths = {"layers": "decoder.blocks", "final_norm": "decoder.out_norm", "lm_head": "head"}
    z = torch.tensor([2.0, -1.0])
    times = resolve_parts(model, {**paths, "logit_scale": "scale"})
    assert torch.equal(times.finish(z), z * 4.0)
    over = resolve_parts(model, {**paths, "logit_divisor": "scale"})
    assert torch.equal(over.finish(z), z / 4.0)
    assert resolve_parts(model, paths).finish(z).equal(z)
    with pytest.raises(ModelLoadError):
        resolve_parts(model, {**paths, "logit_scale": "no_such_scale"})


def test_bad_override_refused_by_engine(make_engine):
    with pytest.raises(ModelLoadError):
        make_engine("llama", layer_prob=True, parts={"final_norm": "model.nope"})


@pytest.mark.parametrize("family,norm", [("llama", "model.norm"), ("gpt2", "transformer.ln_f"),
                                         ("gemma2", "model.norm"), ("qwen2", "model.norm")])
def test_known_families_resolve(make_engine, family, norm):
    from explorer.engine.parts import lookup

    engine = make_engine(family, layer_prob=True)
    assert engine.parts.final_norm is lookup(engine.model, norm)
    assert engine.parts.n_layers == engine.info.n_layers


def test_lens_needs_layer_prob(make_engine):
    engine = make_engine("llama")
    engine.sync("k", [4, 5])
    with pytest.raises(EngineError):
        engine.layer_probs("k", [1])
    with pytest.raises(EngineError):
        engine.prompt_layer_probs("k")


def test_more_families_resolve_from_configs():
    from transformers import (GPTNeoXConfig, GPTNeoXForCausalLM, MistralConfig,
                              MistralForCausalLM, PhiConfig, PhiForCausalLM, Qwen3Config,
                              Qwen3ForCausalLM)

    small = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                 num_attention_heads=2, num_key_value_heads=2)
    for cfg, cls in [(MistralConfig(**small), MistralForCausalLM),
                     (Qwen3Config(**small, head_dim=8), Qwen3ForCausalLM),
                     (PhiConfig(**small), PhiForCausalLM),
                     (GPTNeoXConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                                    num_hidden_layers=2, num_attention_heads=2), GPTNeoXForCausalLM)]:
        model = cls(cfg)
        parts = resolve_parts(model)
        assert parts.n_layers == 2
        with torch.no_grad():
            assert parts.lm_head(parts.final_norm(torch.zeros(1, 16))).shape[-1] == 64
