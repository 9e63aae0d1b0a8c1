"""Constraints (llguidance) in the sampler, checked independently of llguidance: generated
text against Python's `regex` (full and partial matches) and `jsonschema`; the mask's
place in the pipeline against a numpy softmax.

Generation here is a plain loop: a full forward pass of the whole sequence per step (no
cache), the sampler pipeline with the constraint's mask, and the seeded draw.
"""

from __future__ import annotations

import json
import random

import jsonschema
import numpy as np
import pytest
import regex
import torch

from explorer.config import EMBEDDED_MODEL_DIR
from explorer.sampling import SamplingSettings, distributions, draw
from explorer.sampling.constraint import Constraint, ConstraintError, ConstraintSpec

pytestmark = pytest.mark.skipif(not (EMBEDDED_MODEL_DIR / "config.json").exists(),
                                reason="embedded model not built yet")

PROMPT = "The answer is"


@pytest.fixture(scope="module")
def lm():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR)
    model = AutoModelForCausalLM.from_pretrained(EMBEDDED_MODEL_DIR).eval()
    return model, tok


def logits_after(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0, -1].float().numpy()


def generate(lm, spec, settings, *, steps=48, on_step=None):
    """Appended ids under the constraint until it is complete and EOS is drawn (or it is
    complete and nothing else may follow)."""
    model, tok = lm
    vocab = model.config.vocab_size
    constraint = Constraint.for_tokenizer(spec, tok, vocab)
    prompt = [int(i) for i in tok(PROMPT)["input_ids"]]
    appended: list[int] = []
    for _ in range(steps):
        allowed = constraint.allowed(appended)
        if on_step is not None:
            on_step(appended, allowed, constraint)
        if constraint.is_complete(appended) and allowed.sum() == 1 and allowed[tok.eos_token_id]:
            break
        ids = prompt + appended
        dist = distributions(logits_after(model, ids), ids, len(prompt), settings, allowed)
        assert not dist.p_final[~allowed].any() and dist.valid is not None
        token = draw(dist.p_final, settings.seed, len(ids))
        if token == tok.eos_token_id:
            assert constraint.is_complete(appended)
            break
        appended.append(token)
    return tok.decode(appended), constraint.is_complete(appended)


SAMPLED = SamplingSettings(temperature=1.0, seed=7)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_regex_generation_fully_matches_and_every_step_is_a_valid_prefix(lm, seed):
    model, tok = lm
    pattern = r" (cat|dog)s? [0-9]{2}!"
    special = set(tok.all_special_ids)
    rng = random.Random(seed)

    def check(appended, allowed, constraint):
        # Each token flagged valid keeps the text a valid prefix; a sample of the
        # invalid ones does not (regex's partial matching, not llguidance).
        for t in np.flatnonzero(allowed):
            if int(t) in special:
                assert regex.fullmatch(pattern, tok.decode(appended)) is not None
                continue
            text = tok.decode(appended + [int(t)])
            if "\ufffd" not in text:  # a byte token that is part of a character
                assert regex.fullmatch(pattern, text, partial=True), repr(text)
        invalid = [int(t) for t in np.flatnonzero(~allowed) if int(t) not in special]
        for t in rng.sample(invalid, min(150, len(invalid))):
            text = tok.decode(appended + [t])
            if "\ufffd" not in text:
                assert not regex.fullmatch(pattern, text, partial=True), repr(text)

    text, complete = generate(lm, ConstraintSpec("regex", pattern),
                              SamplingSettings(temperature=1.0, seed=seed), on_step=check)
    assert complete and regex.fullmatch(pattern, text), repr(text)


def test_choices_give_exactly_one_choice(lm):
    choices = (" yes", " no", " maybe later")
    for seed in (1, 2, 3, 4):
        text, complete = generate(lm, ConstraintSpec("choice", choices),
                                  SamplingSettings(temperature=1.0, seed=seed))
        assert complete and text in choices


def test_greedy_under_a_choice_takes_the_likelier_allowed_token(lm):
    text, _ = generate(lm, ConstraintSpec("choice", (" the end", " a start")),
                       SamplingSettings(temperature=0.0, seed=0))
    assert text in (" the end", " a start")


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 6},
        "ok": {"type": "boolean"},
    },
    "required": ["name", "ok"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("seed", [1, 2])
def test_json_schema_generation_parses_and_validates(lm, seed):
    text, complete = generate(lm, ConstraintSpec("json_schema", json.dumps(SCHEMA)),
                              SamplingSettings(temperature=1.0, seed=seed), steps=64)
    assert complete, repr(text)
    jsonschema.validate(json.loads(text), SCHEMA)


def test_lark_grammar_generation_matches_the_equivalent_regex(lm):
    grammar = 'start: greeting " " name "."\ngreeting: "hello" | "hi"\nname: /[A-Z][a-z]{1,5}/'
    text, complete = generate(lm, ConstraintSpec("grammar", grammar),
                              SamplingSettings(temperature=1.0, seed=3))
    assert complete and regex.fullmatch(r"(hello|hi) [A-Z][a-z]{1,5}\.", text), repr(text)


def test_mask_sits_after_temperature_and_before_top_k(lm):
    model, tok = lm
    ids = [int(i) for i in tok(PROMPT)["input_ids"]]
    z = logits_after(model, ids).astype(np.float64)
    constraint = Constraint.for_tokenizer(ConstraintSpec("regex", r" [0-9]+"), tok, len(z))
    allowed = constraint.allowed([])
    assert 0 < allowed.sum() < len(z)
    # Temperature only: p_final = softmax(z / T) over the allowed tokens, renormalised.
    t = 0.7
    d = distributions(z, ids, len(ids), SamplingSettings(temperature=t), allowed)
    ref = np.where(allowed, np.exp((z - z.max()) / t), 0.0)
    np.testing.assert_allclose(d.p_final, ref / ref.sum(), atol=1e-6)
    np.testing.assert_array_equal(d.valid, allowed)
    # Top-k after the mask: k=1 keeps the likeliest *allowed* token, not the likeliest.
    d1 = distributions(z, ids, len(ids), SamplingSettings(top_k=1), allowed)
    best_allowed = int(np.flatnonzero(allowed)[np.argmax(z[allowed])])
    assert np.flatnonzero(d1.p_final).tolist() == [best_allowed] != [int(np.argmax(z))]
    # Without a constraint nothing is flagged.
    assert distributions(z, ids, len(ids), SamplingSettings()).valid is None


def test_pop_and_fork_roll_the_matcher_back(lm):
    _, tok = lm
    c = Constraint.for_tokenizer(ConstraintSpec("regex", r" (cat|dog)"), tok, 8192)
    cat = [int(i) for i in tok(" cat", add_special_tokens=False)["input_ids"]]
    dog = [int(i) for i in tok(" dog", add_special_tokens=False)["input_ids"]]
    assert c.is_complete(cat) and not c.is_complete([])
    assert c.allowed([]).sum() > 1
    assert c.is_complete(dog)  # another path from the same constraint
    with pytest.raises(ConstraintError, match="breaks the constraint"):
        c.allowed(cat + cat)
    assert c.is_complete(cat)  # still usable after a refused token


@pytest.mark.parametrize("spec, words", [
    (ConstraintSpec("regex", "(ab"), "regex is not valid"),
    (ConstraintSpec("grammar", "start: x"), "grammar is not valid"),
    (ConstraintSpec("json_schema", "{not json"), "not valid JSON"),
    (ConstraintSpec("json_schema", "[1, 2]"), "must be a JSON object"),
    (ConstraintSpec("choice", ()), "at least one choice"),
    (ConstraintSpec("colour", "red"), "Unknown constraint kind"),
])
def test_bad_constraints_get_one_sentence(lm, spec, words):
    _, tok = lm
    with pytest.raises(ConstraintError, match=words) as info:
        Constraint.for_tokenizer(spec, tok, 8192)
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message


def test_describe_for_the_header():
    assert ConstraintSpec("choice", ("yes", "no")).describe() == "choice yes|no"
    assert ConstraintSpec("regex", "[0-9]+").describe() == "regex [0-9]+"
    assert len(ConstraintSpec("grammar", "start: " + "x " * 50).describe()) <= 48


def test_eos_after_a_whole_match_ends_it_and_pop_rolls_back(lm):
    _, tok = lm
    c = Constraint.for_tokenizer(ConstraintSpec("regex", r" (cat|dog)"), tok, 8192)
    cat = [int(i) for i in tok(" cat", add_special_tokens=False)["input_ids"]]
    eos = tok.eos_token_id
    assert c.allowed(cat)[eos]  # a whole match: EOS may follow
    assert c.fits(cat + [eos]) and c.is_complete(cat + [eos])
    with pytest.raises(ConstraintError, match="complete; nothing may follow"):
        c.allowed(cat + [eos])
    assert not c.fits(cat + [eos, eos])
    assert not c.fits([eos])  # EOS before a match breaks it
    assert c.allowed(cat)[eos] and c.fits(cat[:-1]) and c.allowed([]).sum() > 1
