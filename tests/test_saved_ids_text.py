"""A saved prompt whose token_ids do not decode to its text (another tokenizer under the
same model name, or a hand edit) opens with its ids and one warning sentence: a notice in
the app, a `warning:` line on stderr from trace and tree. A normal save reopens silently."""

from __future__ import annotations

import json

from app_fixtures import SIZE, RecordingApp, embedded_engine, requires_model, settle
from app_fixtures import app_settings as settings_for_test

from explorer import cli
from explorer.session import load_prompt_file, save_prompt

pytestmark = requires_model

TEXT = "Once upon a time"
WARNING = ("its token_ids decode to different text than its text field (saved with another "
           "model or edited by hand?); the ids are used.")


def saved(folder, text=TEXT, ids=None, messages=None):
    """A prompt saved as the app saves it: the text is the backend's decode of the ids."""
    engine = embedded_engine()
    ids = tuple(engine.encode(text)) if ids is None else ids
    txt = save_prompt(folder, engine.decode(ids), ids, engine.info.name, messages)
    return txt.with_suffix(".json"), ids


def mismatched(folder):
    """A save whose token_ids were replaced by another prompt's ids (the text kept)."""
    meta, _ = saved(folder)
    other = tuple(embedded_engine().encode("Once upon a dog"))
    record = json.loads(meta.read_text(encoding="utf-8"))
    assert record["text"] == TEXT and record["token_ids"] != list(other)
    record["token_ids"] = list(other)
    meta.write_text(json.dumps(record), encoding="utf-8")
    return meta, other


def test_ids_that_decode_to_other_text_load_with_one_warning(tmp_path):
    engine = embedded_engine()
    meta, other = mismatched(tmp_path)
    loaded = load_prompt_file(meta, engine.encode, engine.info.name, decode=engine.decode)
    assert loaded.ids == other  # the ids are the prompt
    assert loaded.warning == f"{meta.name}: {WARNING}"


def test_a_normal_save_and_a_chat_save_reopen_without_a_warning(tmp_path):
    engine = embedded_engine()
    plain, ids = saved(tmp_path)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    chat_ids = tuple(engine.chat_ids(messages))  # starts with the template's special tokens
    chat, _ = saved(tmp_path, ids=chat_ids, messages=messages)
    for meta, expected in ((plain, ids), (chat, chat_ids)):
        for path in (meta, meta.with_suffix(".txt")):
            loaded = load_prompt_file(path, engine.encode, engine.info.name, decode=engine.decode)
            assert loaded.ids == expected and loaded.warning is None, path


async def open_in_app(tmp_path, meta):
    """(the ids the app opened, its notes) for `meta` given as --input."""
    app = RecordingApp(settings_for_test(tmp_path), engine=embedded_engine(), input_path=meta)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = app.main.book.current.ids
    return ids, app.notes


async def test_the_app_opens_the_ids_with_a_notice(tmp_path):
    meta, other = mismatched(tmp_path / "in")
    ids, notes = await open_in_app(tmp_path, meta)
    assert ids == other
    assert (f"{meta.name}: {WARNING}", "warning") in notes


async def test_the_app_reopens_a_normal_save_without_a_notice(tmp_path):
    meta, saved_ids = saved(tmp_path / "in")
    ids, notes = await open_in_app(tmp_path, meta)
    assert ids == saved_ids
    assert not [note for note in notes if note[1] != "information"], notes


def test_trace_and_tree_say_it_on_stderr(tmp_path, capsys):
    meta, _ = mismatched(tmp_path)
    assert cli.main(["trace", "--model", "embedded", "-i", str(meta), "--max-new-tokens", "1"]) == 0
    assert f"warning: {meta.name}: {WARNING}" in capsys.readouterr().err
    assert cli.main(["tree", "--model", "embedded", "-i", str(meta), "--max-nodes", "3",
                     "--max-depth", "2"]) == 0
    assert f"warning: {meta.name}: {WARNING}" in capsys.readouterr().err


def test_trace_and_tree_are_quiet_on_a_normal_save(tmp_path, capsys):
    meta, _ = saved(tmp_path)
    assert cli.main(["trace", "--model", "embedded", "-i", str(meta), "--max-new-tokens", "1"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert cli.main(["tree", "--model", "embedded", "-i", str(meta), "--max-nodes", "3",
                     "--max-depth", "2"]) == 0
    assert "warning" not in capsys.readouterr().err
