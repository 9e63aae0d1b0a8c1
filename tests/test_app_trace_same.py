"""One sequence (seeded sampling, forced text, two pinned tokens, a regex constraint) driven
through the app (Pilot, real keys) and through `trace`'s generation loop with its choice
(explorer.core.trace.trace + TraceChoice) on the same model and settings: the same token
ids, and the same numbers (log-probs, p_final, tracked log-probs) within 1e-6."""

from __future__ import annotations

import math

import numpy as np
from app_fixtures import RecordingApp, embedded_engine, requires_model, settle
from app_fixtures import app_settings as settings_for

from explorer.core.trace import trace
from explorer.core.trace_sampling import TraceChoice, tracked_ids
from explorer.sampling import SamplingConfig
from explorer.sampling.constraint import ConstraintSpec
from explorer.session.sampler import Sampler

pytestmark = requires_model
PROMPT = "Once upon a time"
FORCED = " there was"
PINS = [" dog", " cat"]
REGEX = r"[ a-z]{1,60}"  # lower-case words: the forced text fits, and the draws must
STEPS = 4
SAMPLING = SamplingConfig(values={"seed": 77, "temperature": 1.3, "top_k": 0, "top_p": 0.95})


async def set_regex(app, pilot) -> None:
    await pilot.press("c")
    await pilot.pause()
    panel = app.screen
    panel.query_one("#kind").value = "regex"
    panel.query_one("#text").text = REGEX
    await pilot.press("ctrl+s")
    await settle(app, pilot)


async def test_app_and_trace_give_the_same_tokens_and_numbers():
    engine = embedded_engine()
    app = RecordingApp(settings_for(sampling=SAMPLING), engine=engine, prompt_text=PROMPT)
    app_finals = []  # per draw: {token id: log p_final} of the table's rows, as drawn
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await set_regex(app, pilot)
        await pilot.press("t", *FORCED, "enter")
        await settle(app, pilot)
        for text in PINS:
            await pilot.press("M", *text, "enter")
            await settle(app, pilot)
        for _ in range(STEPS):
            drawing = app.main.sampler_drawing()
            shown = drawing["sampler"]
            app_finals.append({c.token_id: math.log(p) for c, p in zip(drawing["candidates"], shown.p_final)
                               if p > 0})
            await pilot.press("space")
            await settle(app, pilot)
        prompt = app.main.book.current
        app_ids, original = prompt.ids, prompt.original
        app_logprobs = [r.logprob for r in app.main.records]
        pins = app.main.tracked_ids
        series = app.main.lane.views["tracked"]
        app_tracked = np.asarray(series.logprobs, dtype=np.float64)
        assert tuple(series.token_ids) == tuple(pins)
        assert not [n for n in app.notes if n[1] != "information"], app.notes

    # trace: the same prompt, the forced text after it, the same sampler and constraint.
    sampler = Sampler(SAMPLING.resolve(engine.sampling_defaults()))
    sampler.set_constraint(engine.constraint(ConstraintSpec("regex", REGEX)))
    forced = tuple(engine.encode_plain(FORCED))
    choice = TraceChoice(engine, "same", sampler, len(original))
    result = trace(engine, original + forced, STEPS, choose=choice, key="same", stop_ids=(), forget=False)
    try:
        trace_series = engine.tracked("same", tracked_ids(PINS, engine.encode_plain, engine.token_text, print))
    finally:
        engine.forget("same")

    assert result.ids == app_ids and len(app_ids) == len(original) + len(forced) + STEPS
    assert list(trace_series.token_ids) == pins and len(pins) == 2
    assert np.abs(np.array([r.logprob for r in result.records], dtype=np.float64)[1:]
                  - np.array(app_logprobs[1:], dtype=np.float64)).max() < 1e-6
    assert np.abs(np.asarray(trace_series.logprobs, dtype=np.float64) - app_tracked).max() < 1e-6
    compared = 0
    for step, (mine, theirs) in enumerate(zip(app_finals, choice.finals)):
        chosen = app_ids[len(original) + len(forced) + step]
        assert theirs[chosen] is not None  # the draw was one p_final allows
        for token in mine.keys() & theirs.keys():
            # p_final itself within 1e-6 (its log differs by float32 rounding, ~1e-6 at
            # log p -5, where the engine reached the same row by another cache path).
            assert abs(math.exp(mine[token]) - math.exp(theirs[token])) < 1e-6, (step, token)
            compared += 1
    assert compared >= STEPS  # the drawn tokens at least were on both tables
    assert len(choice.valids) == STEPS and all(v[app_ids[len(original) + len(forced) + n]]
                                               for n, v in enumerate(choice.valids))
