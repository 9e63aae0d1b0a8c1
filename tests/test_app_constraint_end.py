"""Pilot test: once the constrained text is a whole match the table says so: "complete"
when only end-of-sequence may follow, "ended" after it, "a whole match" when it may also
go on. The allowed set is read independently from the table's own valid flags and the
tokenizer's end-of-sequence ids."""

from __future__ import annotations

import regex
from app_fixtures import SIZE, make_app, requires_model, screen_text, settle
from test_app_constraint import appended_text, sampling, set_constraint

pytestmark = requires_model


def words(app) -> str:
    return " ".join(screen_text(app).split())


async def test_the_table_says_when_the_constraint_is_complete():
    choices = (" man named Tom.", " little dog.")
    app = make_app(sampling=sampling(temperature=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_constraint(app, pilot, "choice", "\n".join(choices))
        assert app.main.sampler_drawing()["sampler"].constraint_end == ""
        assert "constraint complete" not in words(app)
        await pilot.press("g")  # autoplay: one whole choice, then end-of-sequence
        await settle(app, pilot)
        assert appended_text(app) in choices
        assert app.main.book.current.ids[-1] in app.main.engine.eos_ids
        assert app.main.sampler_drawing()["sampler"].constraint_end == "ended"
        assert "next token · constraint ended: nothing may follow" in words(app)

        await pilot.press("left")  # pop the end-of-sequence token: a whole choice
        await settle(app, pilot)
        shown = app.main.sampler_drawing()["sampler"]
        assert shown.constraint_end == "complete"
        eos = app.main.engine.eos_ids
        for candidate, ok, p in zip(app.main.table.candidates, shown.valid, shown.p_final):
            assert ok == (candidate.token_id in eos)
            assert (p > 0) == ok
        text = words(app)
        assert "next token · constraint complete: only EOS allowed" in text
        assert "complete: only end-of-sequence allowed" in text  # the legend's line


async def test_a_whole_match_that_may_go_on():
    number = r" [0-9]+"
    app = make_app(sampling=sampling(temperature=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_constraint(app, pilot, "regex", number)
        for _ in range(4):
            if regex.fullmatch(number, appended_text(app)):
                break
            await pilot.press("space")
            await settle(app, pilot)
        assert regex.fullmatch(number, appended_text(app))
        shown = app.main.sampler_drawing()["sampler"]
        assert shown.constraint_end == "match"
        eos = app.main.engine.eos_ids
        for candidate, ok in zip(app.main.table.candidates, shown.valid):
            if ok and candidate.token_id not in eos:  # more digits may follow as well
                more = appended_text(app) + app.main.engine.decode([candidate.token_id])
                assert regex.fullmatch(number, more, partial=True)
        assert "a whole match: end-of-sequence allowed" in words(app)
        assert "constraint complete" not in words(app)
