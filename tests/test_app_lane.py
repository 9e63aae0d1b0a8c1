"""Bursts of keys with no delay between them (as a terminal delivers them): the app must
always settle, on exactly the state the prompt book says. The freeze of issue 14 was two
prompt-changing keys arriving together; these tests reproduce that shape and worse."""

from __future__ import annotations

import asyncio
import json

import pytest
from app_fixtures import SIZE, embedded_engine, make_app, requires_model, screen_text, settle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual import events

from explorer.session import PromptBook

pytestmark = requires_model

KEYS = ["right", "l", "left", "h", "w", "s", "d", "a", "ctrl+r", "down", "up", "e"]
ROWS = 30  # tokens_to_show


def burst(app, keys) -> None:
    """Post the keys straight into the app's queue, all at once."""
    for key in keys:
        app.post_message(events.Key(key, None))


def expected_book(start: tuple[int, ...], keys) -> PromptBook:
    """The keys applied one by one to a plain PromptBook: each append takes the row the
    cursor was on when it was pressed, from the table computed for the prompt at that moment
    (one engine sync under a key of its own)."""
    engine, book, row = embedded_engine(), PromptBook([start]), 0
    for key in keys:
        try:
            if key in ("right", "l"):
                book.append(engine.sync(("reference",), book.current.ids)[-1].top[row].token_id)
            elif key in ("left", "h"):
                book.pop()
            elif key == "w":
                book.previous()
            elif key == "s":
                book.next()
            elif key == "d":
                book.fork()
            elif key == "a":
                book.remove()
            elif key == "ctrl+r":
                book.reset()
            elif key == "down":
                row = min(row + 1, ROWS - 1)
            elif key == "up":
                row = max(row - 1, 0)
        except ValueError:
            pass  # refused: last token, last prompt
    return book


async def run_burst(input_path, keys, **overrides):
    app = make_app(input_path=input_path, **overrides)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        start = app.main.book.current.ids
        burst(app, keys)
        await settle(app, pilot)
        book = app.main.book
        assert app.is_idle and app.main.lane.pending == 0 and not app.main.busy
        assert app.main.shown == (book.current.key, book.current.ids)
        assert tuple(r.token_id for r in app.main.records) == book.current.ids
        assert app.main.table.candidates == app.main.records[-1].top
        text = screen_text(app)
        n = len(book.current.ids)
        assert f"prompt {book.index + 1}/{len(book)} · {n} token{'' if n == 1 else 's'}" in text
        assert "computing" not in text
        expected = expected_book(start, keys)
        assert [(p.ids, p.original) for p in book] == [(p.ids, p.original) for p in expected]
        assert book.index == expected.index
        return app


@pytest.fixture
def short_prompt(tmp_path):
    """Three tokens, so a burst of pops reaches the bottom."""
    ids = embedded_engine().encode("Once upon a")[:3]
    path = tmp_path / "short.json"
    path.write_text(json.dumps({"model": "embedded", "token_ids": ids, "text": "x"}))
    return path


@pytest.mark.parametrize(
    "keys",
    [["left", "left"], ["right", "left"], ["left", "right"], ["d", "d", "s", "s", "s"],
     ["s", "s", "s"], ["left"] * 60, ["d", "right", "w", "left", "s", "right", "a", "a"]],
    ids=["left-left", "right-left", "left-right", "fork-cycle", "s-s-s", "60-left", "mixed"],
)
async def test_known_freezing_bursts_settle(keys):
    await run_burst(None, keys)


async def test_sixty_pops_return_to_the_first_token_then_reset(short_prompt):
    app = await run_burst(short_prompt, ["left"] * 60 + ["ctrl+r"])
    assert len(app.main.book.current.ids) == 3


async def test_pops_with_influence_and_layer_views_on():
    app = make_app(layer_prob=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for key in ("e", "e", "e", "p"):  # influence and the layer probabilities view
            await pilot.press(key)
        await settle(app, pilot)
        start = app.main.book.current.ids
        burst(app, ["left"] * 30)
        await settle(app, pilot)
        assert app.main.book.current.ids == (start[:-30] if len(start) > 30 else start[:1])
        assert app.main.shown == (app.main.book.current.key, app.main.book.current.ids)
        assert set(app.main.lane.views) == {"influence", "prompt_lens", "candidate_lens", "logits"}
        assert app.main.lane.views["influence"].shape == (len(app.main.book.current.ids),)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=40))
def test_any_burst_settles_on_the_books_state(short_prompt, keys):
    asyncio.run(run_burst(short_prompt, keys))
