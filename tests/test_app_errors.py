"""Errors a user can cause: one clear message, and the session goes on."""

from __future__ import annotations

import json

from app_fixtures import SIZE, embedded_engine, make_app, requires_model, screen_text, settle

from explorer.config import ModelSettings

pytestmark = requires_model


async def test_unknown_model_shows_one_line_and_quits_cleanly():
    app = make_app(engine=False, model=ModelSettings(name="no-such-org/no-such-model-xyz"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.start_failed and app.main.book is None
        text = screen_text(app)
        assert "no-such-model-xyz" in text and "ctrl+q" in text and "could not start" in text
        assert [severity for _, severity in app.notes] == ["error"]
        await pilot.press("right", "e")  # nothing to act on; nothing breaks
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running and app.return_code == 1


async def test_a_failed_server_start_names_the_server_not_the_local_model():
    """Issue 20: after a failed --server the header named the configured local model."""
    from explorer.config import ServerSettings

    server = ServerSettings(url="http://127.0.0.1:9", connect_timeout=1, retries=0)
    app = make_app(engine=False, server=server)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.start_failed
        header = screen_text(app).splitlines()[0]
        assert "http://127.0.0.1:9" in header and "could not start" in header
        assert "embedded" not in header


async def test_loading_the_embedded_model_through_settings():
    app = make_app(engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert not app.start_failed and app.main.engine.info.name == "embedded"
        assert len(app.main.table.candidates) == 30


async def _opens_default_with_error(input_path, fragment):
    app = make_app(input_path=input_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        default = app.settings.resolve(app.settings.prompts.default).read_text(encoding="utf-8")
        assert app.main.book.current.ids == tuple(embedded_engine().encode(default))
        errors = [note for note, severity in app.notes if severity == "error"]
        assert len(errors) == 1 and fragment in errors[0], errors
        assert "Opened default.txt instead" in errors[0]


async def test_missing_input_opens_default_with_error(tmp_path):
    await _opens_default_with_error(tmp_path / "nope.txt", "does not exist")


async def test_binary_input_opens_default_with_error(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x7fELF\x00\x01\x02")
    await _opens_default_with_error(path, "binary")


async def test_non_utf8_input_opens_default_with_error(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café olé".encode("latin-1"))
    await _opens_default_with_error(path, "not UTF-8")


async def test_empty_input_opens_default_with_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("")
    await _opens_default_with_error(path, "empty")


async def test_huge_input_is_refused_by_its_size_before_it_is_read(tmp_path):
    path = tmp_path / "huge.txt"
    path.write_text("word " * (1 + 4 * 1024 * 1024 // 5))
    await _opens_default_with_error(path, "a prompt file may be at most 4 MiB")


async def test_input_longer_than_context_opens_default_with_error(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("the cat sat on the mat. " * 1000)
    await _opens_default_with_error(path, "that embedded supports")  # the one context sentence


async def test_append_past_the_context_is_refused_and_nothing_is_lost(tmp_path):
    engine = embedded_engine()
    limit = engine.info.max_context
    ids = (engine.encode("the cat sat on the mat. " * 400))[:limit]
    path = tmp_path / "full.json"
    path.write_text(json.dumps({"model": "embedded", "token_ids": ids, "text": engine.decode(ids)}))
    app = make_app(input_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.main.book.current.ids == tuple(ids)
        await pilot.press("right")
        await settle(app, pilot)
        assert app.main.book.current.ids == tuple(ids) and app.main.shown[1] == tuple(ids)
        errors = [note for note, severity in app.notes if severity == "error"]
        assert len(errors) == 1, errors
        await pilot.press("left")  # and the session goes on
        await settle(app, pilot)
        assert app.main.book.current.ids == tuple(ids[:-1])


async def test_other_models_json_is_retokenised_with_warning(tmp_path):
    path = tmp_path / "theirs.json"
    path.write_text(json.dumps({"model": "gpt2", "token_ids": [1, 2, 3], "text": "Hello there"}))
    app = make_app(input_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.main.book.current.ids == tuple(embedded_engine().encode("Hello there"))
        assert [severity for _, severity in app.notes] == ["warning"]
