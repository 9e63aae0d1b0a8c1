"""The explorer core with no UI (explorer.session.headless): forced text, two pins, a regex
constraint and seeded autoplay on the embedded model give exactly what `trace`'s loop
gives with the same choice and stop rule: the same ids, log-probs and tracked values."""

from __future__ import annotations

import sys

import numpy as np
from app_fixtures import embedded_engine, requires_model

from explorer.core.trace import trace
from explorer.core.trace_sampling import TraceChoice
from explorer.sampling import SamplingConfig
from explorer.sampling.constraint import ConstraintSpec
from explorer.session.headless import Headless
from explorer.session.sampler import Sampler, StopRule
from explorer.session.views import View

pytestmark = requires_model
SAMPLING = SamplingConfig(values={"seed": 5, "temperature": 1.2, "top_k": 0, "top_p": 0.9})
REGEX = r"[ a-z]{1,80}"
TOKENS = 6


def test_headless_autoplay_equals_trace():
    engine = embedded_engine()
    original = tuple(engine.encode("Once upon a time"))
    run = Headless(engine, SAMPLING)
    core = run.open(original)
    core.constrain(core.prepare_constraint(ConstraintSpec("regex", REGEX)))
    core.force(" there was")
    run.settle()
    core.pin_text(" dog")
    core.pin_text(" cat")
    core.set_sampler(core.sampler.settings, StopRule(max_tokens=TOKENS))
    core.autoplay()
    run.settle()
    ids = core.book.current.ids
    forced = tuple(engine.encode_plain(" there was"))
    assert ids[:len(original) + len(forced)] == original + forced and not core.autoplaying
    assert any(f"Autoplay stopped after {len(ids) - len(original) - len(forced)} tokens" in n for n in run.notes)

    sampler = Sampler(SAMPLING.resolve(engine.sampling_defaults()))
    sampler.set_constraint(engine.constraint(ConstraintSpec("regex", REGEX)))
    choice = TraceChoice(engine, "h", sampler, len(original))
    result = trace(engine, original + forced, TOKENS, choose=choice, key="h", forget=False,
                   rule=StopRule(max_tokens=TOKENS, eos_ids=frozenset(engine.eos_ids)))
    try:
        series = engine.tracked("h", core.tracked_ids)
    finally:
        engine.forget("h")
    assert result.ids == ids
    assert len(core.tracked_ids) == 2
    assert np.abs(np.array([r.logprob for r in result.records[1:]])
                  - np.array([r.logprob for r in core.lane.records[1:]])).max() < 1e-6
    assert np.abs(series.logprobs - core.lane.views[View.TRACKED].logprobs).max() < 1e-6


def test_the_core_imports_no_textual():
    import subprocess

    code = ("import sys, explorer.session.headless, explorer.core.trace_sampling; "
            "sys.exit(any(m == 'textual' or m.startswith('textual.') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_headless_verbs_append_pop_fork_and_save_in_order():
    engine = embedded_engine()
    saved = []  # (the app writes the files on "save")
    run = Headless(engine, SAMPLING, on_press=saved.append)
    core = run.open(tuple(engine.encode("Once upon a time")))
    top = core.lane.records[-1].top
    core.append(2)
    core.save()
    core.fork()
    core.pop()
    run.settle()
    first, second = core.book
    assert first.ids[-1] == top[2].token_id and second.ids == first.ids[:-1] and core.book.index == 1
    assert saved == ["save"] and "Forked: now on prompt 2/2." in run.notes
