"""Switching models in the running app (ctrl+o): the picker lists built-ins, recent folders
and the local Hugging Face cache; a chosen model loads in a worker; prompts are kept (ids
when the tokenizer reads them the same, re-tokenised with a warning otherwise); a model
that fails to load leaves the current one working. Nothing is downloaded."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import OptionList

from app_fixtures import SIZE, embedded_engine, make_app, requires_model, screen_text, settle
from explorer.config import EMBEDDED_MODEL_DIR
from explorer.sampling import SamplingConfig

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
    while app.main.switching:
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
        assert app.main.engine is embedded_engine()


async def test_switch_to_same_tokenizer_keeps_every_prompt_exactly(tmp_path):
    folder = tmp_path / "embedded-copy"
    shutil.copytree(EMBEDDED_MODEL_DIR, folder)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("right", "d", "right", "right")
        await settle(app, pilot)
        before = [(p.ids, p.original) for p in app.main.book]
        await switch(app, pilot, str(folder))
        assert app.main.engine is not embedded_engine() and app.main.engine.info.name == str(folder)
        assert [(p.ids, p.original) for p in app.main.book] == before and app.main.book.index == 1
        assert not [n for n, sev in app.notes if sev == "warning"]
        # The screen's records are the new model's own numbers for the same ids.
        assert [r.token_id for r in app.main.records] == list(before[1][0])
        assert app.main.records == app.main.engine.sync("check", before[1][0])
        await pilot.press("right")  # and it keeps working
        await settle(app, pilot)
        assert len(app.main.book.current.ids) == len(before[1][0]) + 1
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
        old = app.main.engine
        text = old.decode(app.main.book.current.ids)
        await switch(app, pilot, str(folder))
        assert app.main.engine.info.name == str(folder)
        # Re-tokenised from the text, BOS as the new tokenizer adds it.
        assert app.main.book.current.ids == tuple(app.main.engine.encode(text))
        assert app.main.engine.decode(app.main.book.current.ids) == "<bos>" + text
        warnings = [n for n, sev in app.notes if sev == "warning"]
        assert len(warnings) == 1 and "re-tokenised" in warnings[0]


def test_a_picked_model_opens_locally_in_a_session_begun_on_a_server():
    """The picker names local models: a switch must not reconnect to the --server (the
    header then named the server's model, not the one picked)."""
    from app_fixtures import app_settings
    from explorer.config import ServerSettings
    from explorer.ui.model_switch import SwitchDone, open_model

    server = ServerSettings(url="http://127.0.0.1:9", connect_timeout=1, retries=0)
    got = []
    open_model(got.append, app_settings(server=server), "embedded", 1)
    done = [m for m in got if isinstance(m, SwitchDone)]
    assert len(done) == 1 and done[0].error == "", done[0].error
    assert done[0].backend.info.name == "embedded"
    done[0].backend.close()


async def test_failed_switch_leaves_the_current_model_working(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = app.main.book.current.ids
        await switch(app, pilot, str(tmp_path / "no-such-model"))
        errors = [n for n, sev in app.notes if sev == "error"]
        assert len(errors) == 1 and "does not exist" in errors[0] and "Still on embedded" in errors[0]
        assert app.main.engine is embedded_engine() and app.main.book.current.ids == ids
        header = screen_text(app).splitlines()[0]
        assert "embedded" in header and "no-such-model" not in header  # what is loaded
        await pilot.press("right")
        await settle(app, pilot)
        assert len(app.main.book.current.ids) == len(ids) + 1


def plain_probs(folder: Path, ids) -> np.ndarray:
    """p after every position from one plain forward pass of the model saved in `folder`."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():
        logits = model(torch.tensor([list(ids)])).logits[0].float()
    return torch.softmax(logits, -1).numpy()


async def test_pins_cross_by_text_and_the_sampler_stays(tmp_path, tokenizer):
    """The repro of issue 20: pins made on one model, then a model with another tokenizer.
    Every pin is re-tokenised from its text (a text of several tokens keeps its first and
    says so), the panel shows the new model's numbers (never "computing" for good), and
    the sampler's knobs, seed and stop settings are the user's, not the new defaults."""
    from conftest import tiny_model

    folder = tmp_path / "tiny-random"
    tiny_model("llama", len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    app = make_app(tmp_path, sampling=SamplingConfig())  # no seed in config: a random one
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        old = app.main.engine
        await pilot.press("m", "down", "down", "m")  # two rows of the table, as in the repro
        await pilot.press("M", *" dragonfly", "enter")  # and text that is several tokens
        await settle(app, pilot)
        await pilot.press("o")
        await pilot.pause()
        app.screen.query_one("#knob-temperature").value = "0.7"
        app.screen.query_one("#knob-top_p").value = "0.5"
        app.screen.query_one("#max-tokens").value = "17"
        await pilot.press("enter")
        await settle(app, pilot)
        pinned = list(app.main.tracked_ids)
        assert len(pinned) >= 3 and max(pinned) >= len(tokenizer)  # ids tiny does not have
        sampler, seed, limit = app.main.sampler.settings, app.main.sampler.seed, app.main.stop_rule.max_tokens
        assert sampler.temperature == 0.7 and limit == 17

        await switch(app, pilot, str(folder))
        assert app.main.engine.info.name == str(folder)
        # Each pin's text through the new tokenizer itself; several tokens: the first.
        want, several = [], []
        for t in pinned:
            pieces = tokenizer(old.decode([t]), add_special_tokens=False)["input_ids"]
            several += [old.decode([t])] if len(pieces) > 1 else []
            if pieces and pieces[0] not in want:
                want.append(pieces[0])
        assert app.main.tracked_ids == want and several
        notes = [n for n, sev in app.notes if sev == "warning" and "Pinned tokens" in n]
        assert len(notes) == 1 and all(repr(text) in notes[0] for text in several)
        # The panel: the new model's own numbers, from a plain forward pass.
        assert "computing the tracked tokens" not in screen_text(app)
        rows = app.main.sampler_drawing()["tracked"]
        assert [r.token_id for r in rows] == want
        probs = plain_probs(folder, app.main.book.current.ids)
        for row in rows:
            assert np.abs(row.series - probs[:, row.token_id]).max() < 1e-4
        # The sampler as the user left it.
        assert app.main.sampler.settings == sampler and app.main.sampler.seed == seed
        assert app.main.stop_rule.max_tokens == 17
        # It keeps working: an append follows with the pins' numbers for the longer prompt.
        await pilot.press("right")
        await settle(app, pilot)
        probs = plain_probs(folder, app.main.book.current.ids)
        rows = app.main.sampler_drawing()["tracked"]
        assert len(rows[0].series) == len(app.main.book.current.ids)
        assert np.abs(rows[0].series - probs[:, rows[0].token_id]).max() < 1e-4
        assert "computing the tracked tokens" not in screen_text(app)
