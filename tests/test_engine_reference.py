"""Every stored number equals an independent reference: one plain full forward pass of the
whole sequence in fp32, with the metrics computed here from scratch (not via the engine's
helpers), after a random sequence of load / append / pop / fork / evict / switch."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from conftest import count_forwards

TOL = 1e-4

# Where the reference finds the final norm, written out per family (not the engine's table).
FINAL_NORM = {
    **dict.fromkeys(["llama", "llama-tied", "qwen2", "gemma2", "mistral", "qwen3", "phi3",
                     "gemma3", "cohere", "granite", "stablelm", "olmo2"], lambda m: m.model.norm),
    "gpt2": lambda m: m.transformer.ln_f,
    "falcon": lambda m: m.transformer.ln_f,
    "gpt_neox": lambda m: m.gpt_neox.final_layer_norm,
    "opt": lambda m: m.model.decoder.final_layer_norm,
}

# What each family's forward does to lm_head's output, copied from its modeling file.
HEAD_SCALE = {
    "cohere": lambda m, z: z * m.config.logit_scale,
    "granite": lambda m, z: z / m.config.logits_scaling,
}


@torch.no_grad()
def reference(model, family, ids, k, n_heads):
    """Plain full forward pass; returns a dict of reference numbers."""
    model.set_attn_implementation("eager")
    # Falcon refuses set_attn_implementation but reads its config on every call; its sdpa
    # path with output_attentions adds a boolean mask to the scores.
    model.config._attn_implementation = "eager"
    out = model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    logits = out.logits[0].double()
    logp = torch.log_softmax(logits, -1)
    p = logp.exp()
    ent = -(p * logp).sum(-1)
    V = logits.shape[-1]
    rec = []
    for i in range(len(ids)):
        if i == 0:
            lp = rank = h = None
        else:
            lp = float(logp[i - 1, ids[i]])
            rank = int((logp[i - 1] > logp[i - 1, ids[i]]).sum()) + 1
            h = float(ent[i - 1])
        # The rank a fp32 computation may give when other tokens lie within TOL of t_i.
        ranks = None if i == 0 else (
            int((logp[i - 1] > logp[i - 1, ids[i]] + TOL).sum()) + 1,
            int((logp[i - 1] > logp[i - 1, ids[i]] - TOL).sum()) + 1)
        top = torch.topk(logp[i], k)
        rec.append(dict(logprob=lp, rank=rank, ranks=ranks, entropy=h, next_entropy=float(ent[i]),
                        top_ids=top.indices.tolist(), top_lp=top.values.tolist(), logp=logp[i]))
    # influence: last query row of every (layer, head); top-n by variance over keys
    rows = torch.stack([a[0, :, -1, :] for a in out.attentions]).double()  # [L, H, n]
    var = rows.var(-1, unbiased=False).flatten()
    chosen = sorted(range(var.numel()), key=lambda j: (-float(var[j]), j))[:n_heads]
    mean = rows.flatten(0, 1)[chosen].mean(0)
    span = mean.max() - mean.min()
    infl = torch.ones_like(mean) if span <= 1e-12 else (mean - mean.min()) / span
    # logit lens: row l = final_norm(hidden_states[l]) -> lm_head -> soft-cap; row L = output
    norm = FINAL_NORM[family](model)
    cap = getattr(model.config, "final_logit_softcapping", None)
    n_layers = len(out.hidden_states) - 1
    lens = []
    scale = HEAD_SCALE.get(family, lambda m, z: z)
    for layer in range(n_layers):
        z = scale(model, model.lm_head(norm(out.hidden_states[layer][0])).double())
        if cap:
            z = torch.tanh(z / cap) * cap
        lens.append(torch.softmax(z, -1))
    lens.append(p)
    lens = torch.stack(lens)  # [L+1, n, V]
    return dict(records=rec, influence=infl.numpy(), lens=lens, V=V)




def assert_matches(engine, key, family):
    ids = [r.token_id for r in engine.records(key)]
    ref = reference(engine.model, family, ids, engine.tokens_to_show, engine.influence_heads)
    ln_v = np.log(ref["V"])
    for i, (got, want) in enumerate(zip(engine.records(key), ref["records"])):
        where = f"{family} key={key} position {i}"
        if want["logprob"] is None:
            assert got.logprob is None and got.rank is None and got.entropy is None, where
            assert got.entropy_norm is None, where
        else:
            assert abs(got.logprob - want["logprob"]) < TOL, where
            # Exact, up to tokens within TOL of t_i (fp32 cannot order those reliably).
            assert want["ranks"][0] <= got.rank <= want["ranks"][1], where
            assert abs(got.entropy - want["entropy"]) < TOL, where
            assert abs(got.entropy_norm - want["entropy"] / ln_v) < TOL, where
        assert abs(got.next_entropy - want["next_entropy"]) < TOL, where
        assert abs(got.next_entropy_norm - want["next_entropy"] / ln_v) < TOL, where
        # The top ids in order, except that near-ties (within TOL) may come either way:
        # every id is distinct and carries its own reference log-prob, and the values
        # are the reference's top-k values.
        got_ids = [c.token_id for c in got.top]
        assert len(set(got_ids)) == len(got_ids) == len(want["top_ids"]), where
        assert np.allclose([c.logprob for c in got.top], want["top_lp"], atol=TOL), where
        assert np.allclose([c.logprob for c in got.top], want["logp"][got_ids].numpy(), atol=TOL), where
        assert np.allclose([c.prob for c in got.top], np.exp(want["top_lp"]), atol=TOL), where
    infl = engine.influence(key)
    assert infl.dtype == np.float32 and infl.shape == (len(ids),)
    assert np.allclose(infl, ref["influence"], atol=TOL), f"{family} influence {key}"
    if engine.layer_prob:
        lens = ref["lens"]
        top_ids = [c.token_id for c in engine.records(key)[-1].top][:7] + [3]
        got = engine.layer_probs(key, top_ids)
        want = lens[:, -1, top_ids].numpy()
        assert got.shape == want.shape and np.allclose(got, want, atol=TOL), f"{family} layer_probs"
        # lens at L is the model's own output distribution
        with torch.no_grad():
            out_probs = torch.softmax(engine.model(torch.tensor([ids])).logits[0, -1].double(), -1)
        assert np.allclose(got[-1], out_probs[top_ids].numpy(), atol=TOL)
        cols = engine.prompt_layer_probs(key)
        assert cols.shape == (lens.shape[0], len(ids)) and np.isnan(cols[:, 0]).all()
        if len(ids) > 1:
            want_cols = np.stack([lens[:, i - 1, ids[i]].numpy() for i in range(1, len(ids))], 1)
            assert np.allclose(cols[:, 1:], want_cols, atol=TOL), f"{family} prompt_layer_probs"


FAMILIES = list(FINAL_NORM)
# The first families get the long walk; the rest a shorter one (the suite runs on a shared
# CPU), still through every operation.
LONG_WALK = ("llama", "gpt2", "gemma2", "qwen2")


@pytest.mark.parametrize("family", FAMILIES)
def test_random_operations_match_full_forward(make_engine, family):
    rng = random.Random(hash(family) % 1000)
    engine = make_engine(family, tokens_to_show=12, influence_heads=5, layer_prob=True,
                         prefill_chunk=5, cache_size=2)
    vocab = engine.info.vocab_size
    prompts: dict[str, list[int]] = {}
    counter = 0

    def new_key():
        nonlocal counter
        counter += 1
        return f"p{counter}"

    def load():
        key = new_key()
        prompts[key] = [rng.randrange(vocab) for _ in range(rng.randint(1, 23))]
        engine.sync(key, prompts[key])
        return key

    load()
    for _ in range(22 if family in LONG_WALK else 12):
        op = rng.choice(["load", "append", "append", "pop", "fork", "switch", "rewrite", "forget"])
        key = rng.choice(sorted(prompts))
        ids = prompts[key]
        if op == "load":
            key = load()
        elif op == "append":
            prompts[key] = ids + [rng.randrange(vocab)]
        elif op == "pop" and len(ids) > 1:
            prompts[key] = ids[: -rng.randint(1, min(3, len(ids) - 1))]
        elif op == "fork":
            key = new_key()
            prompts[key] = list(ids)
        elif op == "rewrite":
            keep = rng.randint(1, len(ids))
            prompts[key] = ids[:keep] + [rng.randrange(vocab) for _ in range(rng.randint(1, 6))]
        elif op == "forget" and len(prompts) > 1:
            engine.forget(key)
            del prompts[key]
            continue
        engine.sync(key, prompts[key])
        # cache_size=2 with several prompts: the others get evicted and rebuilt.
        assert_matches(engine, key, family)
    for key in sorted(prompts):
        assert [r.token_id for r in engine.sync(key, prompts[key])] == prompts[key]
        assert_matches(engine, key, family)


def test_lens_parts_reproduce_model_logits(make_engine):
    """Final norm + lm_head + soft-cap applied to the last layer's raw output (before the
    final norm) give the model's own logits: the parts table found the right modules."""
    from explorer.engine.lens import lens_logits

    for family in FAMILIES:
        engine = make_engine(family, layer_prob=True)
        parts = engine.parts
        captured = {}
        def grab(module, args, output):
            captured["h"] = args[0]  # returns None: the output is left alone

        hook = parts.final_norm.register_forward_hook(grab)
        with torch.no_grad():
            logits = engine.model(torch.tensor([[0, 5, 9, 17, 33]])).logits[0]
        hook.remove()
        assert torch.allclose(lens_logits(parts, captured["h"][0]), logits.float(), atol=1e-5), family
        assert (parts.softcap is not None) == (family in ("gemma2", "gemma3")), family
        assert (parts.scale is not None) == (family in HEAD_SCALE), family


@pytest.mark.parametrize("family", ["llama", "gemma2"])
def test_cancelled_load_resumes_from_finished_chunks(make_engine, family):
    """A load cancelled after two chunks keeps them: the next sync runs only the rest, and
    every number still equals the full forward pass."""
    from explorer.engine import SyncCancelled

    engine = make_engine(family, tokens_to_show=12, influence_heads=5, layer_prob=True,
                         prefill_chunk=4)
    forward = engine.model.forward  # put back before the reference comparison
    calls = count_forwards(engine)
    before = engine.sync("k", [5, 6])
    ids = [5] + [random.Random(7).randrange(engine.info.vocab_size) for _ in range(27)]
    seen = []
    with pytest.raises(SyncCancelled):
        engine.sync("k", ids, progress=lambda d, t: seen.append(d), cancelled=lambda: len(seen) >= 2)
    assert engine.records("k") == before  # the prompt itself is unchanged
    calls.clear()
    engine.sync("k", ids)
    # position 0 is shared with [5, 6] and 1-8 were done (two chunks of 4): only 9-27 run
    assert sum(calls) == len(ids) - 9 and max(calls) <= 4
    engine.model.forward = forward
    assert_matches(engine, "k", family)
