"""Integrated gradients from a non-zero baseline ([attribution] baseline, --attribution-baseline).

The ends of the path come from plain forward passes: f(e) from the prompt's input ids,
f(b) from baseline rows built here from the embedding layer (the EOS token's row, or the
mean of every token's row), never from the attribution code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.config import ModelSettings
from explorer.engine import Engine

from conftest import tiny_model
from test_attribution import TEXT, prepared

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def plain_ends(engine, ids, target, baseline):
    """log p(target) at the prompt (input ids) and at the baseline rows (inputs_embeds)."""
    model = engine.model
    embed = model.get_input_embeddings()
    with torch.no_grad():
        x = torch.tensor([list(ids)])
        f_e = torch.log_softmax(model(input_ids=x).logits[0, -1].float(), -1)[target]
        e = embed(x)
        if baseline.startswith("eos"):
            row = embed(torch.tensor([[engine.tokenizer.eos_token_id]]))[0, 0]
        else:
            row = embed(torch.arange(embed.weight.shape[0])[None])[0].double().mean(0).to(e.dtype)
        b = row.expand_as(e).clone()
        if baseline.endswith("-keep-first"):
            b[:, 0] = e[:, 0]
        f_b = torch.log_softmax(model(inputs_embeds=b).logits[0, -1].float(), -1)[target]
    return float(f_e), float(f_b)


def assert_complete(ig, f_e, f_b, within=0.02):
    assert ig.log_p == pytest.approx(f_e, abs=1e-4)
    assert ig.log_p_baseline == pytest.approx(f_b, abs=1e-4)
    assert abs(f_e - f_b) > 0.1  # a real change to account for
    assert abs(float(ig.values.sum()) - (f_e - f_b)) <= within * abs(f_e - f_b)


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma2", "gpt2"])
def test_eos_baseline_is_complete_at_default_steps(make_engine, tokenizer, family):
    """RMSNorm models too: from the EOS embedding the path stays away from zero, and 32
    even Gauss-Legendre points add up to within 2% (from zero they do not: README)."""
    engine, ids, top = prepared(make_engine, tokenizer, family)
    for cand in (top[0], top[5]):
        ig = engine.attribution("p", cand.token_id, "integrated_gradients", baseline="eos")
        assert ig.n_steps >= 32 and ig.baseline == "eos"  # adaptive: doubled if needed
        assert_complete(ig, *plain_ends(engine, ids, cand.token_id, "eos"))


@pytest.mark.parametrize("baseline", ["mean", "eos"])
def test_embedded_model_is_complete_at_default_steps(baseline):
    engine = Engine.load(ModelSettings(name="embedded"))  # pinned: the default is SmolLM2
    ids = engine.encode(TEXT)
    target = engine.sync("p", ids)[-1].top[0].token_id
    ig = engine.attribution("p", target, "integrated_gradients", baseline=baseline)
    assert ig.baseline == baseline and ig.n_steps >= 32
    assert_complete(ig, *plain_ends(engine, ids, target, baseline))


def test_default_model_is_complete_from_the_mean_with_the_first_token_kept():
    """SmolLM2-135M: from zero (or from mean/EOS rows everywhere) f jumps along the path where
    the first token's attention sink switches on; with it kept, 32 points add up (README)."""
    engine = Engine.load(ModelSettings(name="smollm2", device="cpu"))
    ids = engine.encode(TEXT)
    target = engine.sync("p", ids)[-1].top[0].token_id
    ig = engine.attribution("p", target, "integrated_gradients", baseline="mean-keep-first")
    assert ig.n_steps >= 32 and ig.values[0] == 0
    assert_complete(ig, *plain_ends(engine, ids, target, "mean-keep-first"))


def test_mean_baseline_ends_match_a_plain_forward(make_engine, tokenizer):
    """The mean row is what the embedding layer gives on average (here on a random tiny
    model, where that average is near zero, so completeness is not asserted)."""
    engine, ids, top = prepared(make_engine, tokenizer, "llama")
    ig = engine.attribution("p", top[0].token_id, "integrated_gradients", n_steps=4,
                            baseline="mean")
    f_e, f_b = plain_ends(engine, ids, top[0].token_id, "mean")
    assert ig.log_p == pytest.approx(f_e, abs=1e-5)
    assert ig.log_p_baseline == pytest.approx(f_b, abs=1e-5)


def test_cached_per_baseline_and_configured_default(tokenizer):
    engine = Engine(tiny_model("llama", len(tokenizer)), tokenizer, name="t",
                    settings=ModelSettings(name="t"), attribution_baseline="eos")
    ids = engine.encode(TEXT)
    target = engine.sync("p", ids)[-1].top[0].token_id
    configured = engine.attribution("p", target, "integrated_gradients", n_steps=4)
    assert configured.baseline == "eos"
    assert engine.attribution("p", target, "integrated_gradients", n_steps=4, baseline="eos") \
        is configured
    zero = engine.attribution("p", target, "integrated_gradients", n_steps=4, baseline="zero")
    assert zero.baseline == "zero" and not np.array_equal(zero.values, configured.values)
    # The other methods do not depend on a baseline: one cached answer.
    sal = engine.attribution("p", target, "saliency", baseline="zero")
    assert engine.attribution("p", target, "saliency", baseline="mean") is sal
    assert sal.baseline is None


def test_unknown_baseline_and_model_without_eos(tokenizer):
    from explorer.backend import Unavailable

    engine = Engine.from_pretrained_objects(tiny_model("llama", len(tokenizer)), tokenizer)
    ids = engine.encode(TEXT)
    engine.sync("p", ids)
    with pytest.raises(ValueError, match="unknown attribution baseline 'pad'"):
        engine.attribution("p", 3, "integrated_gradients", baseline="pad")
    model = tiny_model("llama", len(tokenizer))
    model.generation_config.eos_token_id = None
    no_eos = Engine.from_pretrained_objects(model, _without_eos(tokenizer))
    no_eos.sync("p", ids)
    with pytest.raises(Unavailable, match="names no end-of-sequence token"):
        no_eos.attribution("p", 3, "integrated_gradients", baseline="eos")


def _without_eos(tokenizer):
    import copy

    tok = copy.deepcopy(tokenizer)
    tok.eos_token = None
    return tok


def test_config_key_and_flag(tmp_path):
    from explorer.cli import parse_args, settings_from_args
    from explorer.config import ConfigError, load_settings

    path = tmp_path / "config.toml"
    path.write_text('[attribution]\nbaseline = "mean"\n')
    assert load_settings(path).attribution.baseline == "mean"
    assert settings_from_args(parse_args(["--config", str(path)])).attribution.baseline == "mean"
    args = parse_args(["--config", str(path), "--attribution-baseline", "eos"])
    assert settings_from_args(args).attribution.baseline == "eos"
    path.write_text("")
    assert load_settings(path).attribution.baseline == "mean-keep-first"  # issue 24's default
    path.write_text('[attribution]\nbaseline = "pad"\n')
    with pytest.raises(ConfigError, match='attribution.baseline must be one of "mean-keep-first", '
                                          '"zero", "mean", "eos", "eos-keep-first", '
                                          'not \'pad\''):
        load_settings(path)
    path.write_text("")
    with pytest.raises(ConfigError, match="--attribution-baseline must be one of"):
        settings_from_args(parse_args(["--config", str(path), "--attribution-baseline", "x"]))


def test_trace_with_the_eos_baseline(tmp_path, capsys):
    """Each JSONL line's integrated gradients add up to log p(token | ids before it) minus
    log p(token | EOS rows), both from plain forward passes of a separately loaded model."""
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from explorer import cli
    from explorer.config import EMBEDDED_MODEL_DIR

    path = tmp_path / "t.jsonl"
    code = cli.main(["trace", "--model", "embedded", "--prompt", TEXT, "--max-new-tokens", "2",
                     "--jsonl", str(path), "--attribution", "integrated_gradients",
                     "--attribution-baseline", "eos"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "integrated_gradients, baseline eos, from 32 steps (took " in out.out
    model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED_MODEL_DIR), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    ids = tok(TEXT)["input_ids"]
    for line in lines:
        before = ids + [x["token_id"] for x in lines[: line["step"] - 1]]
        with torch.no_grad():
            x = torch.tensor([before])
            e = model.get_input_embeddings()(x)
            b = model.get_input_embeddings()(torch.tensor([[tok.eos_token_id]]))[0, 0].expand_as(e)
            f_e, f_b = (float(torch.log_softmax(model(inputs_embeds=v).logits[0, -1], -1)[line["token_id"]])
                        for v in (e, b))
        assert abs(sum(line["attribution"]) - (f_e - f_b)) <= 0.02 * abs(f_e - f_b)
