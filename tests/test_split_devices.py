"""A model split by accelerate (some modules on CPU, some offloaded to disk) gives every
number the unsplit model gives: records, influence, the lens at every layer, tracked
tokens. The reference is the same checkpoint loaded whole, driven through the same steps.

On a machine without GPUs, "disk" is the split that exists: those modules keep their
weights in accelerate's offload folder and on the "meta" device between passes, which is
exactly what breaks code that reads weights directly or assumes one device.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_model
from explorer.config import ModelSettings
from explorer.engine import Engine

TOL = 1e-5

# Embeddings and layer 0 on CPU, layer 1 on disk, layer 2 on CPU, final norm and head on disk.
LLAMA_MAP = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu",
             "model.layers.1": "disk", "model.layers.2": "cpu", "model.norm": "disk",
             "lm_head": "disk"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_model("llama", len(tokenizer), seed=3).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def load(folder, **placement):
    settings = ModelSettings(name=str(folder), device="cpu", prefill_chunk=4, cache_size=2,
                             **placement)
    return Engine.load(settings, tokens_to_show=10, influence_heads=5, layer_prob=True)


def walk(engine):
    """load / append / pop / fork / switch, returning every number the engine reports."""
    seen = []
    a = [5, 9, 14, 22, 31, 40, 47, 50, 61, 70, 3]
    steps = [("a", a), ("a", a + [17]), ("a", a + [17, 88]), ("a", a[:7]),
             ("b", a[:7] + [101, 102]), ("a", a + [17, 88, 5])]
    for key, ids in steps:
        records = engine.sync(key, ids)
        top = [c.token_id for c in records[-1].top]
        seen.append(dict(
            records=[(r.token_id, r.logprob, r.rank, r.entropy, r.next_entropy,
                      [(c.token_id, c.logprob) for c in r.top]) for r in records],
            influence=engine.influence(key),
            heads=engine.last_influence_heads(key),
            lens=engine.layer_probs(key, top),
            lens_cols=engine.prompt_layer_probs(key),
            tracked=engine.tracked(key, top[:3] + [7]),
        ))
    return seen


def assert_same(got, want):
    for g, w in zip(got, want, strict=True):
        for (gt, glp, grank, gent, gnext, gtop), (wt, wlp, wrank, went, wnext, wtop) in zip(
                g["records"], w["records"], strict=True):
            assert gt == wt and grank == wrank
            assert (glp is None) == (wlp is None) and (glp is None or abs(glp - wlp) < TOL)
            assert (gent is None) == (went is None) and (gent is None or abs(gent - went) < TOL)
            assert abs(gnext - wnext) < TOL
            assert [t for t, _ in gtop] == [t for t, _ in wtop]
            assert np.allclose([lp for _, lp in gtop], [lp for _, lp in wtop], atol=TOL)
        assert np.allclose(g["influence"], w["influence"], atol=TOL) and g["heads"] == w["heads"]
        assert np.allclose(g["lens"], w["lens"], atol=TOL)
        assert np.allclose(g["lens_cols"], w["lens_cols"], atol=TOL, equal_nan=True)
        assert np.allclose(g["tracked"].logprobs, w["tracked"].logprobs, atol=TOL)
        assert np.array_equal(g["tracked"].ranks, w["tracked"].ranks)
        assert np.allclose(g["tracked"].layer_probs, w["tracked"].layer_probs, atol=TOL)


def test_cpu_and_disk_split_matches_the_whole_model(checkpoint, tmp_path):
    whole = load(checkpoint)
    split = load(checkpoint, device_map=LLAMA_MAP, offload_folder=str(tmp_path / "offload"))
    assert split.model.hf_device_map == LLAMA_MAP
    assert split.info.device == "cpu+disk" and whole.info.device == "cpu"
    # The disk modules hold no weights between passes (safetensors are read in place).
    assert split.model.lm_head.weight.device.type == "meta"
    assert split.model.model.layers[1].self_attn.q_proj.weight.device.type == "meta"
    assert_same(walk(split), walk(whole))


def test_auto_map_under_a_memory_cap_offloads_and_matches(checkpoint, tmp_path):
    whole = load(checkpoint)
    split = load(checkpoint, device_map="auto", max_memory={"cpu": "120KB"},
                 offload_folder=str(tmp_path / "offload"))
    places = set(split.model.hf_device_map.values())
    assert places == {"cpu", "disk"}, split.model.hf_device_map
    assert_same(walk(split), walk(whole))
