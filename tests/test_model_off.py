"""next-token-visualization's "LLM off" switch in the explorer core (issue 26): while the
model is off, pop, force text and forks apply to the book with no model work, a press that
needs the model is refused with one sentence; turning it on computes once for what
changed, and the records then equal a plain sync of the same ids."""

from __future__ import annotations

import numpy as np
from app_fixtures import embedded_engine, requires_model

from explorer.sampling import SamplingConfig
from explorer.session.headless import Headless

pytestmark = requires_model


def test_model_off_edits_without_model_work_and_on_computes_once():
    engine = embedded_engine()
    ids = tuple(engine.encode("Once upon a time, there was a"))
    run = Headless(engine, SamplingConfig(values={"seed": 1}))
    core = run.open(ids)
    lane = core.lane
    core.toggle_model()
    assert core.model_off
    started = lane.jobs_started
    core.pop()
    core.pop()
    core.force(" dog")
    core.fork()
    core.append(0)  # needs the table: refused
    core.sample()
    run.settle()
    assert lane.jobs_started == started and not run.jobs  # no model work at all
    forced = tuple(engine.encode_plain(" dog"))
    assert core.book.current.ids == ids[:-2] + forced and len(core.book) == 2
    assert sum("The model is off: append needs it" in n for n in run.notes) == 1
    assert sum("The model is off: sample needs it" in n for n in run.notes) == 1
    assert not lane.in_sync  # the screen still shows what it showed
    core.toggle_model()
    run.settle()
    assert not core.model_off and lane.jobs_started == started + 1  # one sync for it all
    assert lane.in_sync and lane.shown[1] == core.book.current.ids
    want = engine.sync("model-off-reference", core.book.current.ids)
    engine.forget("model-off-reference")
    got = np.array([r.logprob for r in lane.records[1:]])
    assert np.abs(got - np.array([r.logprob for r in want[1:]])).max() < 1e-5
    assert [c.token_id for c in lane.records[-1].top] == [c.token_id for c in want[-1].top]
