"""Sessions in the app: start-up opens a resumed session's own model, or, when that cannot
load, the default model with the saved prompts (re-tokenised there by their text)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from explorer.backend import BackendError
from explorer.config import DEFAULT_NAME
from explorer.session.keep import SavedPrompt, SessionState
from explorer.ui import startup
from app_fixtures import app_settings as make_settings

STATE = SessionState(model="gone/model", prompts=(SavedPrompt((1, 2), (1, 2), ("prompt",) * 2, "ab", "ab"),) * 3)


def test_a_session_whose_model_cannot_load_opens_on_the_default_model(monkeypatch):
    opened = []

    def fake_open(settings, progress=None, **kwargs):
        opened.append(settings.model.name)
        if settings.model.name != DEFAULT_NAME:
            raise BackendError(f"No model named {settings.model.name}.")
        return "the default backend"

    monkeypatch.setattr(startup, "open_backend", fake_open)
    said = []
    settings = make_settings()
    settings = replace(settings, model=replace(settings.model, name="gone/model"))
    backend, warnings = startup.open_for_resume(settings, STATE, said.append)
    assert backend == "the default backend" and opened == ["gone/model", DEFAULT_NAME]
    assert warnings == [f"No model named gone/model; the session's 3 prompts are restored on {DEFAULT_NAME} instead."]
    assert said == [f"No model named gone/model; opening {DEFAULT_NAME} with the saved prompts instead…"]


def test_the_default_model_failing_too_is_the_plain_failure(monkeypatch):
    def fail(settings, progress=None, **kwargs):
        raise BackendError("Broken.")

    monkeypatch.setattr(startup, "open_backend", fail)
    settings = make_settings()
    with pytest.raises(BackendError, match="^Broken.$"):
        startup.open_for_resume(replace(settings, model=replace(settings.model, name=DEFAULT_NAME)),
                                STATE, lambda text: None)


# -- the done-when: quit with three prompts (one a fork), two pins, temperature 0.8 and the
# entropy layer on; resuming shows exactly that ------------------------------------------

from app_fixtures import SIZE, RecordingApp, embedded_engine, requires_model, screen_text, settle  # noqa: E402

from explorer.session.keep import load_session  # noqa: E402
from explorer.ui.views import ColourLayer  # noqa: E402


def _state(app):
    main = app.main
    return ([(p.ids, p.original, p.origins) for p in main.book], main.book.index, main.tracked_ids,
            main.sampler.settings, main.colour)


@requires_model
async def test_quit_and_resume_shows_exactly_the_session(tmp_path):
    path = tmp_path / "session.json"
    first = RecordingApp(make_settings(tmp_path), engine=embedded_engine(), keep_session=True, session_file=path)
    async with first.run_test(size=SIZE) as pilot:
        await settle(first, pilot)
        for key in ("right", "d", "right", "right", "d", "left", "w"):  # 3 prompts, two forks
            await pilot.press(key)
            await settle(first, pilot)
        await pilot.press("o")  # the sampler panel: temperature 0.8
        await pilot.pause()
        first.screen.query_one("#knob-temperature").value = "0.8"
        await pilot.press("enter")
        await settle(first, pilot)
        for key in ("m", "down", "m", "e", "e"):  # two pins; none → probability → entropy
            await pilot.press(key)
            await settle(first, pilot)
        before = _state(first)
        shown = screen_text(first).splitlines()[:12]  # header and prompt panel
        await pilot.press("ctrl+q")
    books, index, pins, settings, colour = before
    assert len(books) == 3 and index == 1 and len(pins) == 2
    assert settings.temperature == 0.8 and colour is ColourLayer.ENTROPY
    assert books[1][2][-2:] == ("picked", "picked")  # the fork grown by two

    second = RecordingApp(make_settings(tmp_path), engine=embedded_engine(), resume=load_session(path))
    async with second.run_test(size=SIZE) as pilot:
        await settle(second, pilot)
        assert _state(second) == before
        assert screen_text(second).splitlines()[:12] == shown

    # A fresh start saves its own session over that file within seconds; the palette's
    # "Resume last session" still opens the one saved before it started.
    third = RecordingApp(make_settings(tmp_path), engine=embedded_engine(), keep_session=True, session_file=path)
    async with third.run_test(size=SIZE) as pilot:
        await settle(third, pilot)
        assert len(third.main.book) == 1
        assert third.main.share.keeper.save()  # (the periodic save, now)
        assert len(load_session(path).prompts) == 1
        await pilot.press("ctrl+p")
        await pilot.pause()
        for key in "Resume last":
            await pilot.press("space" if key == " " else key)
        from textual.command import CommandList

        for _ in range(10_000):  # the palette's search runs in the background
            await pilot.pause()
            found = third.screen.query(CommandList)
            if found and found.first().option_count and found.first().highlighted is not None:
                break
        await pilot.press("enter")
        await settle(third, pilot)
        assert _state(third) == before


@requires_model
async def test_resume_keeps_the_attribution_method(tmp_path):
    """Seen in tmux: quit on `attention`, `--resume` came back on saliency (the layer was
    kept, the method was not)."""
    path = tmp_path / "session.json"
    first = RecordingApp(make_settings(tmp_path), engine=embedded_engine(), keep_session=True, session_file=path)
    async with first.run_test(size=SIZE) as pilot:
        await settle(first, pilot)
        for key in ("i", "i"):  # attribution on (saliency), then input × gradient
            await pilot.press(key)
            await settle(first, pilot)
        assert first.main.views.attribution_method == "input_x_gradient"
        await pilot.press("ctrl+q")

    second = RecordingApp(make_settings(tmp_path), engine=embedded_engine(), resume=load_session(path))
    async with second.run_test(size=SIZE) as pilot:
        await settle(second, pilot)
        assert second.main.colour is ColourLayer.ATTRIBUTION
        assert second.main.views.attribution_method == "input_x_gradient"


@requires_model
async def test_resume_keeps_branch_points_and_the_position_cursor(tmp_path):
    """A branch made at a position (`[` then `→`) and the cursor left on an earlier token
    come back as they were."""
    path = tmp_path / "session.json"
    first = RecordingApp(make_settings(tmp_path), engine=embedded_engine(), keep_session=True, session_file=path)
    async with first.run_test(size=SIZE) as pilot:
        await settle(first, pilot)
        for key in ("left_square_bracket", "left_square_bracket", "down", "right",  # branch
                    "left_square_bracket", "left_square_bracket"):  # cursor two tokens back
            await pilot.press(key)
            await settle(first, pilot)
        branched = first.main.book.current.branched_from
        cursor = first.main.core.cursor.index
        assert branched is not None and cursor is not None
        await pilot.press("ctrl+q")

    second = RecordingApp(make_settings(tmp_path), engine=embedded_engine(), resume=load_session(path))
    async with second.run_test(size=SIZE) as pilot:
        await settle(second, pilot)
        assert second.main.book.current.branched_from == branched
        assert second.main.core.cursor.index == cursor
        assert f"position {cursor + 1}/" in screen_text(second)
