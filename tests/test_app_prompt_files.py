"""The app's prompt on the command line (--prompt, with --chat / --system as in trace),
the name `x` gives a chat prompt's files, and a saved prompt reopened with its original
ids and the way each token was added, so that ctrl+r goes back to the original prompt."""

from __future__ import annotations

import json
from dataclasses import replace

from app_fixtures import SIZE, RecordingApp, embedded_engine, make_app, requires_model, settle
from app_fixtures import app_settings as settings_for_test
from transformers import AutoTokenizer

from explorer.config import EMBEDDED_MODEL_DIR
from explorer.session.book import PICKED, PROMPT

pytestmark = requires_model

QUESTION = "What is the capital of France?"


def chat_app(tmp_path, **kwargs) -> RecordingApp:
    settings = settings_for_test(tmp_path)
    settings = replace(settings, prompts=replace(settings.prompts, chat=True, system="Be brief."))
    return RecordingApp(settings, engine=embedded_engine(), **kwargs)


async def test_prompt_flag_with_chat_opens_the_question_as_the_user_message(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))
    expected = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
        add_generation_prompt=True, tokenize=True, return_dict=False)
    app = chat_app(tmp_path, prompt_text=QUESTION)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert list(app.main.book.current.ids) == list(expected)
        assert app.main.book.current.chat[-1] == {"role": "user", "content": QUESTION}


async def test_plain_prompt_flag_is_the_text_itself(tmp_path):
    app = RecordingApp(settings_for_test(tmp_path), engine=embedded_engine(), prompt_text="Once upon a hill")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.main.book.current.ids == tuple(embedded_engine().encode("Once upon a hill"))


async def test_x_names_a_chat_prompt_after_the_users_words(tmp_path):
    app = chat_app(tmp_path, prompt_text=QUESTION)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("x")
        await settle(app, pilot)
    names = sorted(p.name for p in (tmp_path / "saved").iterdir())
    assert names == [f"what-is-the-capital-of-france.{ext}" for ext in ("json", "jsonl", "txt")]


async def test_a_reopened_save_keeps_its_original_and_how_tokens_were_added(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        original = app.main.book.current.ids
        await pilot.press("down", "right", "right", "x")  # two picked tokens, then save
        await settle(app, pilot)
        saved = app.main.book.current
    assert saved.ids[:len(original)] == original and len(saved.ids) == len(original) + 2
    (meta,) = (tmp_path / "saved").glob("*.json")
    record = json.loads(meta.read_text())
    assert record["original_ids"] == list(original)
    assert record["origins"] == [PROMPT] * len(original) + [PICKED, PICKED]

    reopened = make_app(tmp_path, input_path=meta)
    async with reopened.run_test(size=SIZE) as pilot:
        await settle(reopened, pilot)
        assert reopened.main.book.current.ids == saved.ids
        assert reopened.main.book.current.origins == saved.origins
        await pilot.press("ctrl+r")
        await settle(reopened, pilot)
        assert reopened.main.book.current.ids == original


async def test_an_old_save_without_provenance_still_opens(tmp_path):
    ids = embedded_engine().encode("Once upon a time")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"model": "embedded", "token_ids": ids, "text": "Once upon a time"}))
    app = make_app(tmp_path, input_path=old)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.main.book.current.ids == tuple(ids) == app.main.book.current.original
        assert app.main.book.current.origins == (PROMPT,) * len(ids)


async def test_palette_save_mentions_every_file_it_writes(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        (save,) = [c for c in app.get_system_commands(app.screen) if c.title == "Save prompt"]
    assert all(ext in save.help for ext in (".txt", ".json", ".jsonl"))
