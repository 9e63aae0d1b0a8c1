"""Attribution on a model split by accelerate (embeddings on disk, layers on CPU and disk)
and on a bf16 copy, against the same checkpoint loaded whole in fp32: every method, every
position. The reference for the whole model is plain torch.autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tiny_model
from explorer.backend.types import ATTRIBUTION_METHODS
from explorer.config import ModelSettings
from explorer.engine import Engine

# The input embeddings themselves offloaded to disk: the harshest case for reading them.
SPLIT = {"model.embed_tokens": "disk", "model.rotary_emb": "cpu", "model.layers.0": "cpu",
         "model.layers.1": "disk", "model.layers.2": "cpu", "model.norm": "disk",
         "lm_head": "disk"}
IDS = [5, 9, 14, 22, 31, 40, 47, 50, 61, 70, 3]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("tiny-llama-attr")
    tiny_model("llama", len(tokenizer), seed=5).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def load(folder, **placement):
    return Engine.load(ModelSettings(name=str(folder), device="cpu", **placement))


def scores(engine, target, n_steps=16):
    engine.sync("p", IDS)
    return {m: engine.attribution("p", target, m, n_steps=n_steps) for m in ATTRIBUTION_METHODS}


def test_split_over_cpu_and_disk_matches_the_whole_model(checkpoint, tmp_path):
    whole = load(checkpoint)
    split = load(checkpoint, device_map=SPLIT, offload_folder=str(tmp_path / "offload"))
    assert split.model.get_input_embeddings().weight.device.type == "meta"
    target = whole.sync("p", IDS)[-1].top[3].token_id
    want, got = scores(whole, target), scores(split, target)
    # The whole model against plain autograd first.
    with torch.no_grad():
        e = whole.model.get_input_embeddings()(torch.tensor([IDS])).float()
    e.requires_grad_(True)
    f = torch.log_softmax(whole.model(inputs_embeds=e).logits[0, -1].float(), -1)[target]
    (grad,) = torch.autograd.grad(f, e)
    np.testing.assert_allclose(want["saliency"].values, grad[0].norm(dim=-1).numpy(), atol=1e-5)
    for method in ATTRIBUTION_METHODS:
        np.testing.assert_allclose(got[method].values, want[method].values, atol=1e-5, rtol=1e-4)
        assert got[method].log_p == pytest.approx(want[method].log_p, abs=1e-5)


def test_bf16_scores_are_fp32_and_close_to_the_fp32_model(checkpoint):
    whole = load(checkpoint)
    half = load(checkpoint, dtype="bfloat16")
    assert half.info.dtype == "bfloat16"
    target = whole.sync("p", IDS)[-1].top[0].token_id
    want, got = scores(whole, target, 8), scores(half, target, 8)
    for method in ("saliency", "input_x_gradient"):
        v = got[method].values
        assert v.dtype == np.float32 and np.isfinite(v).all()
        # bf16 keeps ~3 significant digits per op: the ranking of positions survives.
        assert np.corrcoef(v, want[method].values)[0, 1] > 0.95, method
    assert np.isfinite(got["integrated_gradients"].values).all()
    assert got["integrated_gradients"].log_p == pytest.approx(want["integrated_gradients"].log_p, abs=0.1)
