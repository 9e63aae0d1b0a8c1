"""The sampler keys driven by Textual's Pilot on the embedded model, checked against
independent computations: a plain full forward pass (p_base, p_final, tracked tokens) and
transformers' greedy generate (autoplay)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from app_fixtures import SIZE, embedded_engine, make_app, requires_model, screen_text, settle

from explorer.config import PromptSettings
from explorer.sampling import SamplingConfig, distributions, draw
from explorer.session.book import FORCED, SAMPLED

pytestmark = requires_model


def full_logits(ids) -> torch.Tensor:
    model = embedded_engine().model
    with torch.no_grad():
        return model(input_ids=torch.tensor([list(ids)])).logits[0].float()


def sampling(**values) -> SamplingConfig:
    return SamplingConfig(values={"seed": 1234, **values})


def count_forwards():
    """Counts the shared engine's forward calls; call the returned undo() when done."""
    model = embedded_engine().model
    calls: list[int] = []
    forward = model.forward

    def counting(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    model.forward = counting

    def undo():
        model.forward = forward

    return calls, undo


async def test_p_final_column_matches_a_full_forward_pass():
    app = make_app(sampling=sampling(temperature=1.5, top_p=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = app.main.book.current.ids
        want = distributions(full_logits(ids)[-1], ids, len(ids), app.main.sampler.settings).p_final
        top = [c.token_id for c in app.main.table.candidates]
        shown = app.main.sampler_drawing()["sampler"]
        assert np.abs(np.array(shown.p_final) - want[top]).max() < 1e-5
        assert any(p == 0 for p in shown.p_final) and shown.p_final[0] > 0
        text = screen_text(app)
        assert "p_final" in text and "excluded" in text and "top-p 0.5" in text


async def test_space_samples_the_seeded_token_and_marks_it():
    app = make_app(sampling=sampling(temperature=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = app.main.book.current.ids
        p_final = distributions(full_logits(ids)[-1], ids, len(ids), app.main.sampler.settings).p_final
        want = draw(p_final, 1234, len(ids))
        await pilot.press("space")
        await settle(app, pilot)
        assert app.main.book.current.ids == ids + (want,)
        assert app.main.book.current.origins[-1] == SAMPLED
        await pilot.press("left", "space")  # pop and draw again: the same seed, the same token
        await settle(app, pilot)
        assert app.main.book.current.ids == ids + (want,)


async def test_autoplay_greedy_equals_generate_and_a_key_stops_it():
    app = make_app(sampling=sampling(temperature=0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = app.main.book.current.ids
        model = embedded_engine().model
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 do_sample=False, max_new_tokens=256, pad_token_id=0, eos_token_id=None)
        greedy = out[0, len(ids):].tolist()
        await pilot.press("g")
        assert app.main.autoplaying
        for _ in range(2000):
            await pilot.pause(0.01)
            if len(app.main.shown[1]) >= len(ids) + 4:
                break
        await pilot.press("j")  # any key stops it
        await settle(app, pilot)
        assert not app.main.autoplaying
        made = app.main.book.current.ids[len(ids):]
        # Below the 256-token limit: the key stopped it (how many came first depends on
        # how busy the CPU is: 55-86 were seen on a loaded machine).
        assert 4 <= len(made) < 256
        assert list(made) == greedy[: len(made)]
        assert all(o == SAMPLED for o in app.main.book.current.origins[len(ids):])
        assert any("Autoplay stopped" in text and "key" in text for text, _ in app.notes)


async def test_autoplay_stops_at_max_tokens_and_stop_strings():
    app = make_app(sampling=replace(sampling(temperature=0), max_tokens=6))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        n = len(app.main.book.current.ids)
        await pilot.press("g")
        await settle(app, pilot)
        assert not app.main.autoplaying and len(app.main.book.current.ids) == n + 6
        assert any("6 tokens (the limit)" in text for text, _ in app.notes)
        # A stop string taken from what greedy writes next: it stops on the token that completes it.
        made = app.main.engine.decode(app.main.book.current.ids[n:])
    word = made.split()[1]
    app = make_app(sampling=replace(sampling(temperature=0), max_tokens=50, stop=(word,)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("g")
        await settle(app, pilot)
        text = app.main.engine.decode(app.main.book.current.ids[n:])
        assert word in text and len(app.main.book.current.ids) < n + 6
        assert any("stop string" in note for note, _ in app.notes)


async def test_forced_text_is_appended_and_shows_its_p_base():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = app.main.book.current.ids
        await pilot.press("t")
        await pilot.press(*" the old king")
        await pilot.press("enter")
        await settle(app, pilot)
        forced = tuple(app.main.engine.encode_plain(" the old king"))
        assert app.main.book.current.ids == ids + forced
        assert app.main.book.current.origins[len(ids):] == (FORCED,) * len(forced)
        lp = torch.log_softmax(full_logits(ids + forced), -1)
        for i, t in enumerate(forced):
            want = float(lp[len(ids) + i - 1, t].exp())
            assert abs(app.main.records[len(ids) + i].prob - want) < 1e-4
        assert any(text.startswith("Forced: '␣the'") for text, _ in app.notes)
        # Text that gives no tokens: one sentence, nothing lost.
        await pilot.press("t", "enter")
        await settle(app, pilot)
        assert app.main.book.current.ids == ids + forced
        assert any("gives no tokens" in text for text, _ in app.notes)


async def test_pin_and_unpin_tracked_tokens():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "m")
        await settle(app, pilot)
        second = app.main.table.candidates[1].token_id
        assert app.main.tracked_ids == [second]
        ids = app.main.book.current.ids
        rows = app.main.sampler_drawing()["tracked"]
        lp = torch.log_softmax(full_logits(ids), -1)
        assert np.abs(rows[0].series - lp[:, second].exp().numpy()).max() < 1e-4
        assert rows[0].rank == 2
        assert "tracked tokens" in screen_text(app)
        await pilot.press("right")  # follows an append without a pass of its own
        await settle(app, pilot)
        ids = app.main.book.current.ids
        rows = app.main.sampler_drawing()["tracked"]
        assert len(rows[0].series) == len(ids)
        lp = torch.log_softmax(full_logits(ids), -1)
        assert np.abs(rows[0].series - lp[:, second].exp().numpy()).max() < 1e-4
        other = app.main.table.selected().token_id  # the new table's row 2
        await pilot.press("m")
        await settle(app, pilot)
        assert app.main.tracked_ids == [second, other] and len(app.main.sampler_drawing()["tracked"]) == 2
        await pilot.press("m")  # the same row again: unpinned
        await settle(app, pilot)
        assert app.main.tracked_ids == [second]
        # M: text that is several tokens pins them all and says so.
        await pilot.press("M")
        await pilot.press(*" dragonfly")
        await pilot.press("enter")
        await settle(app, pilot)
        pieces = app.main.engine.encode_plain(" dragonfly")
        assert len(pieces) > 1 and all(t in app.main.tracked_ids for t in pieces)
        assert any("is not one token" in text for text, _ in app.notes)


async def test_pins_the_table_does_not_list_can_be_unpinned_with_M_or_the_panel():
    """Issue 20: `m` unpins only a token on the table; M with text already pinned unpins
    it, and each tracked row's ✕ unpins that token."""
    from explorer.ui.tracked_panel import TrackedLine

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        listed = {c.token_id for c in app.main.table.candidates}
        await pilot.press("M", *" dragonfly", "enter")
        await pilot.press("M", *" zebra", "enter")
        await settle(app, pilot)
        fly, zebra = app.main.engine.encode_plain(" dragonfly"), app.main.engine.encode_plain(" zebra")
        assert app.main.tracked_ids == list(dict.fromkeys(fly + zebra))
        assert not set(zebra) & listed  # not on the table: `m` cannot reach it
        await pilot.press("M", *" dragonfly", "enter")  # the same text again: unpinned
        await settle(app, pilot)
        assert app.main.tracked_ids == [t for t in dict.fromkeys(zebra) if t not in fly]
        assert any(text.startswith("Unpinned ' dragonfly'") for text, _ in app.notes)
        # The panel's ✕ on the first row removes that pin, and the panel follows.
        lines = app.main.main_view.query(TrackedLine)
        first = lines.first().token_id
        assert [line.token_id for line in lines] == app.main.tracked_ids
        await pilot.click(".unpin")
        await settle(app, pilot)
        assert first not in app.main.tracked_ids
        assert [line.token_id for line in app.main.main_view.query(TrackedLine)] == app.main.tracked_ids
        while app.main.tracked_ids:
            await pilot.click(".unpin")
            await settle(app, pilot)
        assert "tracked tokens" not in screen_text(app)  # the panel closes with the last pin


async def test_a_tracked_view_that_fails_says_so_instead_of_computing_for_good(monkeypatch):
    """Issue 20: the panel said "computing the tracked tokens…" for good when the view
    could not be computed. Now it says so, and a change of pins asks again."""
    from explorer.engine.errors import EngineError

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)

        def broken(*args, **kwargs):
            raise EngineError("The tracked tokens broke.")

        monkeypatch.setattr(app.main.engine, "tracked", broken)
        await pilot.press("m")
        await settle(app, pilot)
        text = screen_text(app)
        assert "computing the tracked tokens" not in text
        assert "The tracked tokens could not be computed" in text
        assert any("The tracked tokens broke." in n for n, sev in app.notes if sev == "error")
        monkeypatch.undo()  # the backend works again: the next pin fetches every pin
        await pilot.press("down", "m")
        await settle(app, pilot)
        rows = app.main.sampler_drawing()["tracked"]
        assert [r.token_id for r in rows] == app.main.tracked_ids and len(rows) == 2


async def test_sampler_panel_bad_value_changes_nothing_and_a_knob_needs_no_forward_pass():
    app = make_app(sampling=sampling(temperature=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = app.main.sampler.settings
        await pilot.press("o")
        await pilot.pause()
        panel = app.screen
        panel.query_one("#knob-top_p").value = "2"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is panel and app.main.sampler.settings == before
        error = str(panel.query_one("#error").render())
        assert "Top-p must be above 0 and at most 1" in error
        panel.query_one("#knob-top_p").value = "0.5"
        panel.query_one("#knob-temperature").value = "1.5"
        calls, undo = count_forwards()
        try:
            await pilot.press("enter")
            await settle(app, pilot)
        finally:
            undo()
        assert calls == []  # a knob change redraws from the kept row
        assert app.main.sampler.settings.top_p == 0.5 and app.main.sampler.settings.temperature == 1.5
        assert "T 1.5 · top-k 50 · top-p 0.5" in screen_text(app)  # top-k 50: generation_config
        # A preset button fills the knobs; escape leaves everything as it was.
        await pilot.press("o")
        await pilot.pause()
        await pilot.click("#preset-greedy")
        assert app.screen.query_one("#knob-temperature").value == "0"
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.main.sampler.settings.temperature == 1.5


async def test_chat_prompt_and_saved_messages(tmp_path):
    import json

    app = make_app(tmp_path, prompts=PromptSettings(chat=True, system="Be brief.",
                                                    save_dir=str(tmp_path / "saved")))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        prompt = app.main.book.current
        assert prompt.messages[0] == ("system", "Be brief.")
        assert app.main.engine.decode(prompt.ids).startswith("<|im_start|>system\nBe brief.<|im_end|>")
        assert "<|im_start|>" in screen_text(app)
        await pilot.press("x")
        await settle(app, pilot)
    saved = json.loads(next((tmp_path / "saved").glob("*.json")).read_text())
    assert saved["messages"][0] == {"role": "system", "content": "Be brief."}
    assert saved["token_ids"] == list(prompt.ids)


async def test_chat_without_a_template_is_one_sentence(tmp_path):
    from app_fixtures import RecordingApp, app_settings
    from conftest import build_tokenizer, tiny_model

    from explorer.engine import Engine

    tok = build_tokenizer()
    engine = Engine.from_pretrained_objects(tiny_model("llama", len(tok)), tok, name="tiny")
    app = RecordingApp(app_settings(prompts=PromptSettings(chat=True)), engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.main.book.current.messages is None and len(app.main.book.current.ids) > 1
        assert any("has no chat template" in text for text, _ in app.notes)


@pytest.mark.parametrize("flags, message", [
    (["--top-p", "2"], "Top-p must be above 0 and at most 1"),
    (["--temperature", "-1"], "Temperature must be 0 (greedy) or between 0.001 and 1000"),
    (["--top-k", "x"], "Top-k must be a whole number"),
])
def test_bad_sampling_flags_are_one_sentence(capsys, flags, message):
    from explorer.cli import main

    assert main(flags) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
