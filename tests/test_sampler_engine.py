"""The engine's sampling side against independent computations: the kept logits row equals
a plain full forward pass, p_final through engine steps equals the scores of transformers'
generate, tracked tokens follow appends and pops exactly, and headless autoplay equals
greedy generate at temperature 0 and reproduces itself with a seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import count_forwards
from transformers import AutoModelForCausalLM, AutoTokenizer

from explorer.backend import ChatTemplateError, Feature
from explorer.config import EMBEDDED_MODEL_DIR
from explorer.engine import Engine
from explorer.engine.kv import TAIL_ROWS
from explorer.sampling import NEUTRAL, PRESETS
from explorer.core.trace import trace
from explorer.core.trace_sampling import TraceChoice
from explorer.session.sampler import Sampler, StopRule


def autoplay(engine, key, ids, sampler, stop) -> list[int]:
    """The generation loop `trace` and the app's autoplay share, with the app's choice."""
    result = trace(engine, ids, stop.max_tokens, choose=TraceChoice(engine, key, sampler, len(ids)),
                   key=key, rule=stop)
    return list(result.completion_ids)


def full_logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([list(ids)])).logits[0].float()


@pytest.fixture(scope="module")
def embedded_engine():
    if not (EMBEDDED_MODEL_DIR / "config.json").exists():
        pytest.skip("embedded model not present")
    model = AutoModelForCausalLM.from_pretrained(EMBEDDED_MODEL_DIR, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR)
    return Engine.from_pretrained_objects(model, tok, name="embedded", prefill_chunk=16)


def test_engine_is_a_sampling_backend(make_engine):
    engine = make_engine("llama")
    assert engine.capabilities.missing(Feature.SAMPLING) is None
    assert engine.capabilities.sampling and engine.capabilities.tracked_tokens


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2"])
def test_next_logits_is_the_full_forward_row(make_engine, family):
    engine = make_engine(family, prefill_chunk=8)
    rng = np.random.default_rng(1)
    ids = rng.integers(2, 300, size=30).tolist()
    engine.sync("a", ids)
    steps = [ids, ids + [5], ids + [5, 9], ids + [5], ids[:20], ids[:12], ids]
    for seq in steps:
        engine.sync("a", seq)
        want = full_logits(engine.model, seq)[-1]
        assert np.abs(engine.next_logits("a") - want.numpy()).max() < 1e-4, len(seq)
    engine.sync("b", ids + [5, 9])  # a fork-like new key sharing the prefix
    assert np.abs(engine.next_logits("b") - full_logits(engine.model, ids + [5, 9])[-1].numpy()).max() < 1e-4


def test_a_knob_change_needs_no_forward_pass(make_engine):
    engine = make_engine("llama", prefill_chunk=8)
    ids = list(range(2, 40))
    engine.sync("a", ids)
    calls = count_forwards(engine)
    engine.next_logits("a")
    engine.next_logits("a")
    engine.sync("a", ids[:-2])  # two pops: rows still kept
    engine.next_logits("a")
    assert calls == []
    engine.sync("a", ids[: len(ids) - TAIL_ROWS - 4])  # popped past the kept rows
    engine.next_logits("a")
    assert len(calls) == 1  # one decode step at most


GRID = [dict(), dict(temperature=0.7, top_p=0.8, repetition_penalty=1.05),
        dict(temperature=1.3, top_k=20, min_p=0.05, repetition_penalty=1.3)]


@pytest.mark.parametrize("change", GRID, ids=[str(c) or "neutral" for c in GRID])
@pytest.mark.parametrize("which", ["tiny", "embedded"])
def test_engine_steps_match_generate_scores(request, make_engine, which, change):
    """Each step's p_final from the engine's kept row equals softmax of generate's scores."""
    from explorer.sampling import distributions

    engine = request.getfixturevalue("embedded_engine") if which == "embedded" else make_engine("llama", seed=3)
    settings = NEUTRAL.with_changes(**change)
    ids = engine.encode("Once upon a time, there was a")
    ids = ids + ids[1:4]
    torch.manual_seed(0)
    with torch.no_grad():
        out = engine.model.generate(
            torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            do_sample=True, max_new_tokens=6, temperature=settings.temperature, top_k=settings.top_k,
            top_p=settings.top_p, min_p=settings.min_p, repetition_penalty=settings.repetition_penalty,
            output_scores=True, return_dict_in_generate=True, pad_token_id=0)
    seq = out.sequences[0].tolist()
    for step, scores in enumerate(out.scores):
        so_far = seq[: len(ids) + step]
        engine.sync("g", so_far)
        mine = distributions(engine.next_logits("g"), so_far, len(ids), settings).p_final
        want = torch.softmax(scores[0].float(), -1).numpy()
        assert np.abs(mine - want).max() < 1e-5, step


@pytest.mark.parametrize("which", ["tiny", "embedded"])
def test_headless_autoplay_greedy_equals_generate(request, make_engine, which):
    engine = request.getfixturevalue("embedded_engine") if which == "embedded" else make_engine("llama", seed=3)
    ids = engine.encode("The little dog")
    with torch.no_grad():
        out = engine.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                    do_sample=False, max_new_tokens=16, pad_token_id=0, eos_token_id=None)
    want = out[0, len(ids):].tolist()
    sampler = Sampler(PRESETS["greedy"])
    got = autoplay(engine, "auto", ids, sampler, StopRule(max_tokens=16))
    assert got == want


def test_headless_autoplay_seeded_and_stops(embedded_engine):
    engine = embedded_engine
    ids = engine.encode("Once upon a time")
    settings = PRESETS["creative"].with_changes(seed=11)

    def run(settings, stop):
        return autoplay(engine, "s", ids, Sampler(settings), stop)

    first = run(settings, StopRule(max_tokens=20))
    assert len(first) == 20 and run(settings, StopRule(max_tokens=20)) == first
    assert run(settings.with_changes(seed=12), StopRule(max_tokens=20)) != first
    # A stop string: stops on the token that completes it, and keeps it.
    text = engine.decode(first)
    word = text.split()[2]
    stopped = run(settings, StopRule(max_tokens=20, stop_strings=(word,)))
    assert word in engine.decode(stopped) and word not in engine.decode(stopped[:-1])
    # EOS: the drawn token ends it; the context limit likewise.
    stop = StopRule(max_tokens=20, eos_ids=frozenset({first[4]}))
    assert run(settings, stop) == first[: first.index(first[4]) + 1]
    assert run(settings, StopRule(max_tokens=20, max_context=len(ids) + 3)) == first[:3]
    rule = StopRule(max_tokens=20, max_context=len(ids) + 3)
    assert "context limit" in rule.after(first[:3], len(ids) + 3, engine.decode)


def test_tracked_follows_appends_and_pops(make_engine):
    engine = make_engine("llama", prefill_chunk=8)
    rng = np.random.default_rng(2)
    ids = rng.integers(2, 300, size=25).tolist()
    engine.sync("a", ids)
    lp = torch.log_softmax(full_logits(engine.model, ids), -1)
    order = torch.argsort(lp[-1], descending=True).tolist()
    tokens = [order[0], order[150], 7]
    first = engine.tracked("a", tokens)
    assert np.abs(first.logprobs - lp[:, tokens].numpy()).max() < 1e-4
    calls = count_forwards(engine)
    for seq in (ids + [3], ids + [3, 44], ids + [3], ids[:-3], ids[:-3] + [8]):
        engine.sync("a", seq)
        calls.clear()
        series = engine.tracked("a", tokens)
        assert calls == []  # followed from kept rows, no pass
        ref = torch.log_softmax(full_logits(engine.model, seq), -1)
        assert series.logprobs.shape == (len(seq), 3)
        assert np.abs(series.logprobs - ref[:, tokens].numpy()).max() < 1e-4
        ranks = (ref[:, None, :] > ref[:, tokens][:, :, None]).sum(-1) + 1
        assert np.abs(series.ranks - ranks.numpy()).max() <= 1


def test_text_chat_and_eos(make_engine, embedded_engine):
    tiny = make_engine("llama")
    assert tiny.encode("hello")[0] == tiny.tokenizer.bos_token_id
    assert tiny.encode_plain("hello") == tiny.encode("hello")[1:]
    with pytest.raises(ChatTemplateError, match="has no chat template"):
        tiny.chat_ids([{"role": "user", "content": "hi"}])
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "A story, please."}]
    ids = embedded_engine.chat_ids(messages)
    rendered = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nA story, please.<|im_end|>\n<|im_start|>assistant\n"
    assert ids == embedded_engine.encode_plain(rendered)
    assert embedded_engine.decode(ids) == rendered
    with pytest.raises(ChatTemplateError, match="failed to render"):
        embedded_engine.chat_ids([{"role": "user"}])  # no content: the template cannot add it
    assert embedded_engine.eos_ids == frozenset({0})
    assert embedded_engine.sampling_defaults() == PRESETS["greedy"].with_changes(top_k=50)
