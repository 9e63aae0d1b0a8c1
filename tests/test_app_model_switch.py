"""Switching models in the running app (ctrl+o): the picker lists built-ins, recent folders
and the local Hugging Face cache; a chosen model loads in a worker; prompts are kept (ids
when the tokenizer reads them the same, re-tokenised with a warning otherwise); a model
that fails to load leaves the current one working. Nothing is downloaded."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from textual.widgets import OptionList

from app_fixtures import SIZE, embedded_engine, make_app, requires_model, settle
from explorer.config import EMBEDDED_MODEL_DIR

pytestmark = requires_model


@pytest.fixture(autouse=True)
def private_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKEN_EXPLORER_CACHE", str(tmp_path / "te-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


def fake_hub_repo(hub: Path, repo_id: str, payload: bytes) -> None:
    """A model repository laid out as huggingface_hub's cache lays it out."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    digest = hashlib.sha256(payload).hexdigest()
    commit = "a" * 40
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / digest).write_bytes(payload)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "config.json").symlink_to(Path("../../blobs") / digest)


async def switch(app, pilot, name: str) -> None:
    await pilot.press("ctrl+o")
    await pilot.pause()
    await pilot.click("#picker-input")
    await pilot.press(*name)  # typed, as a user would
    await pilot.press("enter")
    await settle(app, pilot)
    while app.switching:
        await settle(app, pilot)


async def test_picker_lists_builtins_recent_and_hub_cache(tmp_path):
    fake_hub_repo(tmp_path / "hub", "acme/tiny-lm", b'{"model_type": "llama"}' * 100)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+o")
        await settle(app, pilot)
        labels = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
        assert labels[0].startswith("smollm2 — ") and labels[1].startswith("tiny — ")
        assert any(l.startswith("acme/tiny-lm — ") and "hub cache · 2.3 KB" in l for l in labels)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.engine is embedded_engine()


async def test_switch_to_same_tokenizer_keeps_every_prompt_exactly(tmp_path):
    folder = tmp_path / "embedded-copy"
    shutil.copytree(EMBEDDED_MODEL_DIR, folder)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("right", "d", "right", "right")
        await settle(app, pilot)
        before = [(p.ids, p.original) for p in app.book]
        await switch(app, pilot, str(folder))
        assert app.engine is not embedded_engine() and app.engine.info.name == str(folder)
        assert [(p.ids, p.original) for p in app.book] == before and app.book.index == 1
        assert not [n for n, sev in app.notes if sev == "warning"]
        # The screen's records are the new model's own numbers for the same ids.
        assert [r.token_id for r in app.records] == list(before[1][0])
        assert app.records == app.engine.sync("check", before[1][0])
        await pilot.press("right")  # and it keeps working
        await settle(app, pilot)
        assert len(app.book.current.ids) == len(before[1][0]) + 1
    # The folder is remembered for the next picker.
    from explorer.backend.catalog import recent_names

    assert recent_names() == [str(folder.resolve())]


async def test_switch_to_another_tokenizer_retokenises_with_a_warning(tmp_path, tokenizer):
    from conftest import tiny_model

    folder = tmp_path / "tiny-random"
    tiny_model("llama", len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        old = app.engine
        text = old.decode(app.book.current.ids)
        await switch(app, pilot, str(folder))
        assert app.engine.info.name == str(folder)
        # Re-tokenised from the text, BOS as the new tokenizer adds it.
        assert app.book.current.ids == tuple(app.engine.encode(text))
        assert app.engine.decode(app.book.current.ids) == "<bos>" + text
        warnings = [n for n, sev in app.notes if sev == "warning"]
        assert len(warnings) == 1 and "re-tokenised" in warnings[0]


async def test_failed_switch_leaves_the_current_model_working(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = app.book.current.ids
        await switch(app, pilot, str(tmp_path / "no-such-model"))
        errors = [n for n, sev in app.notes if sev == "error"]
        assert len(errors) == 1 and "does not exist" in errors[0] and "Still on embedded" in errors[0]
        assert app.engine is embedded_engine() and app.book.current.ids == ids
        await pilot.press("right")
        await settle(app, pilot)
        assert len(app.book.current.ids) == len(ids) + 1
