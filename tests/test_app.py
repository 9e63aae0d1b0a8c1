"""Pilot tests: the real app on the real engine with the embedded model, pressing real keys.

Every wait is on workers and the message queue (`settle`), never a fixed sleep.
"""

from __future__ import annotations

import json

from app_fixtures import SIZE, embedded_engine, make_app, requires_model, screen_text, settle

from textual import events

from explorer.session import PromptBook
from explorer.ui.heatmap import LayerHeatmap
from explorer.ui.views import ColourLayer, LayerView

pytestmark = requires_model


async def test_opens_on_default_prompt():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        engine = embedded_engine()
        default = app.settings.resolve(app.settings.prompts.default).read_text(encoding="utf-8")
        assert app.main.book.current.ids == tuple(engine.encode(default))
        assert len(app.main.table.candidates) == app.settings.display.tokens_to_show == 30
        text = screen_text(app)
        assert "embedded · cpu · float32" in text and "prompt 1/1" in text
        assert "quick␣brown" in text  # whitespace visible in the prompt panel
        top = app.main.records[-1].top[0]
        assert top.text in text and f"{top.prob:.2%}".strip() in text
        # the entropy of the distribution the table shows (p_base, and the sampler's
        # p_final beside it), normalised and in nats, each labelled: nats as in trace,
        # tree and the files (design.md "Entropy unit")
        last = app.main.records[-1]
        assert f"entropy p_base {last.next_entropy_norm:.2f} H/ln V" in text
        assert f"({last.next_entropy:.2f} nats)" in text and "bits" not in text
        assert "Append" in text and "Pop" in text and "Quit" in text  # the footer
        assert not app.notes


async def test_cursor_keys_move_without_model_work():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        jobs = app.main.lane.jobs_started
        for key, row in [("down", 1), ("j", 2), ("j", 3), ("k", 2), ("up", 1), ("up", 0)]:
            await pilot.press(key)
            assert app.main.table.cursor_row == row
        assert app.main.lane.jobs_started == jobs and app.is_idle


async def test_append_takes_cursor_row_and_pop_undoes():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        start = app.main.book.current.ids
        await pilot.press("down", "down")
        third = app.main.table.candidates[2]
        await pilot.press("right")
        await settle(app, pilot)
        assert app.main.book.current.ids == start + (third.token_id,)
        assert app.main.records[-1].token_id == third.token_id
        assert third.text in screen_text(app)
        second_pick = app.main.table.candidates[2]  # the cursor stays on row 3
        await pilot.press("l")
        await settle(app, pilot)
        assert app.main.book.current.ids == start + (third.token_id, second_pick.token_id)
        await pilot.press("left")
        await settle(app, pilot)
        assert app.main.book.current.ids == start + (third.token_id,)
        await pilot.press("h")
        await settle(app, pilot)
        assert app.main.book.current.ids == start and len(app.main.records) == len(start)


async def test_pop_never_empties_the_prompt(tmp_path):
    one = tmp_path / "one.json"
    engine = embedded_engine()
    one.write_text(json.dumps({"model": "embedded", "token_ids": engine.encode("Hi")[:1], "text": "H"}))
    app = make_app(input_path=one)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert len(app.main.book.current.ids) == 1
        await pilot.press("left")
        await settle(app, pilot)
        assert len(app.main.book.current.ids) == 1
        assert any("only token" in note for note, _ in app.notes)


def greedy_reference(ids: list[int], steps: int) -> list[int]:
    """Greedy continuation from a plain full forward pass per step: no KV cache, no engine."""
    import torch
    from transformers import AutoModelForCausalLM

    from explorer.config import EMBEDDED_MODEL_DIR

    model = AutoModelForCausalLM.from_pretrained(EMBEDDED_MODEL_DIR, dtype=torch.float32).eval()
    out = list(ids)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([out])).logits[0, -1].float()
            out.append(int(logits.argmax()))
    return out[len(ids):]


async def test_holding_right_appends_exactly_100_in_order():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        start = app.main.book.current.ids
        jobs = app.main.lane.jobs_started
        # A key-repeat burst straight into the app's queue, as a terminal delivers a held
        # key: pilot.press() would wait for the process to go idle after every key.
        for _ in range(100):
            app.post_message(events.Key("right", None))
        await settle(app, pilot)
        assert app.main.lane.most_pending > 10  # presses outran the model: queued, not dropped
        # Queued appends were chained inside the running job's worker, not one job each.
        assert app.main.lane.jobs_started - jobs <= 50
        ids = app.main.book.current.ids
        assert len(ids) == len(start) + 100 and ids[: len(start)] == start
        # Each step took row 0 of the table shown at that moment: the top candidate after
        # the position before it.
        records = app.main.records
        for i in range(len(start), len(ids)):
            assert ids[i] == records[i - 1].top[0].token_id
        assert list(ids[len(start):]) == greedy_reference(list(start), 100)
        # A burst draws the newest state at most every 50 ms; the last one is on screen.
        assert f"prompt · {len(ids)} tokens" in screen_text(app)
        assert app.main.table.candidates == records[-1].top


async def test_fork_cycle_remove():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        original = app.main.book.current.ids
        await pilot.press("d")
        await settle(app, pilot)
        assert len(app.main.book) == 2 and app.main.book.index == 1
        assert "prompt 2/2" in screen_text(app)
        await pilot.press("right", "right")
        await settle(app, pilot)
        forked = app.main.book.current.ids
        assert len(forked) == len(original) + 2
        await pilot.press("w")
        await settle(app, pilot)
        assert app.main.book.index == 0 and app.main.book.current.ids == original
        assert app.main.records[-1].token_id == original[-1] and "prompt 1/2" in screen_text(app)
        await pilot.press("s")
        await settle(app, pilot)
        assert app.main.book.index == 1 and app.main.shown[1] == forked
        await pilot.press("s")  # wraps around
        await settle(app, pilot)
        assert app.main.book.index == 0
        await pilot.press("a")
        await settle(app, pilot)
        assert len(app.main.book) == 1 and app.main.book.current.ids == forked
        await pilot.press("a")
        await settle(app, pilot)
        assert len(app.main.book) == 1
        assert any("last prompt" in note for note, _ in app.notes)


async def test_reset_goes_back_to_original_tokens():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        original = app.main.book.current.ids
        await pilot.press("right", "right", "left", "right")
        await settle(app, pilot)
        assert len(app.main.book.current.ids) == len(original) + 2
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert app.main.book.current.ids == original and app.main.shown[1] == original


async def test_save_then_reopen_token_for_token(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "right", "right", "x")
        await settle(app, pilot)
        saved_ids = app.main.book.current.ids
    txts = list((tmp_path / "saved").glob("*.txt"))
    assert len(txts) == 1
    meta = json.loads(txts[0].with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["model"] == "embedded" and tuple(meta["token_ids"]) == saved_ids
    assert txts[0].read_text(encoding="utf-8") == embedded_engine().decode(saved_ids)
    assert any("Saved" in note for note, _ in app.notes)
    for path in (txts[0], txts[0].with_suffix(".json")):
        again = make_app(input_path=path)
        async with again.run_test(size=SIZE) as pilot:
            await settle(again, pilot)
            assert again.main.book.current.ids == saved_ids and not again.notes


async def test_save_into_unwritable_folder_keeps_the_prompt(tmp_path):
    blocker = tmp_path / "saved"
    blocker.write_text("a file where the folder should be")  # root ignores chmod; this fails
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("right")
        await settle(app, pilot)
        ids = app.main.book.current.ids
        await pilot.press("x")
        await settle(app, pilot)
        assert app.main.book.current.ids == ids
        errors = [note for note, severity in app.notes if severity == "error"]
        assert len(errors) == 1 and "Could not save" in errors[0]


async def test_colour_layers_cycle():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        seen = []
        for _ in range(4):  # attribution is not in the cycle (i reaches it)
            await pilot.press("e")
            await settle(app, pilot)
            seen.append(app.main.colour)
            text = screen_text(app)
            assert f"colour: {app.main.colour.value}" in text
        assert seen == [ColourLayer.PROBABILITY, ColourLayer.ENTROPY, ColourLayer.INFLUENCE,
                        ColourLayer.NONE]
        ids = app.main.shown[1]
        influence = app.main.lane.views["influence"]
        assert influence.shape == (len(ids),) and 0.0 <= influence.min() and influence.max() <= 1.0
        jobs = app.main.lane.jobs_started
        await pilot.press("e", "e", "e")  # influence again: already held, no model work
        await settle(app, pilot)
        assert app.main.colour is ColourLayer.INFLUENCE and app.main.lane.jobs_started == jobs


async def test_layer_views_cycle_with_layer_prob():
    app = make_app(layer_prob=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        heatmap = app.query_one(LayerHeatmap)
        assert not heatmap.display
        await pilot.press("p")
        await settle(app, pilot)
        assert app.main.layer_view is LayerView.PROBABILITIES and heatmap.display
        ids = app.main.shown[1]
        layers = embedded_engine().info.n_layers + 1
        assert app.main.lane.views["prompt_lens"].shape == (layers, len(ids))
        assert app.main.lane.views["candidate_lens"].shape == (layers, 30)
        text = screen_text(app)
        assert "layers: layer probabilities" in text and f"L{layers - 1}" in text
        await pilot.press("p")
        await settle(app, pilot)
        assert app.main.layer_view is LayerView.CORRELATIONS and "layer correlations" in screen_text(app)
        await pilot.press("right")  # strips follow the new prompt
        await settle(app, pilot)
        assert app.main.lane.views["candidate_lens"].shape[1] == 30 and app.main.shown == (
            app.main.book.current.key, app.main.book.current.ids)  # views are held for what is shown
        await pilot.press("p")
        await settle(app, pilot)
        assert app.main.layer_view is LayerView.NONE and not heatmap.display


async def test_layer_view_key_explains_how_to_enable():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await pilot.pause()
        assert app.main.layer_view is LayerView.NONE
        assert any("--layer_prob" in note for note, _ in app.notes)


async def test_question_mark_lists_every_key_and_the_footer_fits():
    """The footer shows what fits in 120 columns, ending with its last key; `?` opens a
    panel with every key, those left out of the footer included, and closes it again.
    (Tall enough that the panel's list is not cut: it has grown past 40 rows.)"""
    app = make_app()
    async with app.run_test(size=(SIZE[0], 90)) as pilot:
        await settle(app, pilot)
        footer = screen_text(app).splitlines()[-1]
        assert "? Keys" in footer and "g Autoplay" in footer and footer.rstrip().endswith("^p palette")
        assert "Constraint" not in footer
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        for key, what in [("c", "Constraint"), ("i", "Attribution method"), ("o", "Sampler"),
                          ("m", "Pin token"), ("b", "Token tree"), ("^o", "Switch model"),
                          ("w", "Prev"), ("s", "Next"), ("t", "Force text")]:
            assert f"{key} {what}" in text, what
        ids = app.main.book.current.ids
        await pilot.press("question_mark")
        await pilot.pause()
        assert "Attribution method" not in screen_text(app)
        await pilot.press("right")  # keys still reach the app after the panel closes
        await settle(app, pilot)
        assert len(app.main.book.current.ids) == len(ids) + 1


async def test_quit():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running


def test_book_is_usable_headless():
    """The session and engine work without the UI (design: a headless user)."""
    engine = embedded_engine()
    book = PromptBook([engine.encode("Hello")])
    records = engine.sync(book.current.key, book.current.ids)
    book.append(records[-1].top[0].token_id)
    assert engine.sync(book.current.key, book.current.ids)[-1].token_id == book.current.ids[-1]


class GatedEngine:
    """The real engine, except that sync() for one chosen key waits until released or
    cancelled: it makes "a rebuild still running when the user moves on" deterministic."""

    def __init__(self, engine, gated_key=None):
        import threading

        self._engine, self.gated_key, self.release = engine, gated_key, threading.Event()
        self.cancelled_seen = False

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def sync(self, key, ids, *, progress=None, cancelled=None):
        from explorer.backend import Cancelled

        if key == self.gated_key:
            while not self.release.wait(0.01):
                if cancelled is not None and cancelled():
                    self.cancelled_seen = True
                    raise Cancelled("cancelled")
        return self._engine.sync(key, ids, progress=progress, cancelled=cancelled)


async def test_switching_away_supersedes_a_running_rebuild():
    from app_fixtures import RecordingApp, app_settings

    gated = GatedEngine(embedded_engine())
    app = RecordingApp(app_settings(), engine=gated)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        first = app.main.book.current.key
        app.main.book.fork()  # a second prompt, not yet synced: showing it needs a rebuild
        app.main.book.previous()
        gated.gated_key = list(app.main.book)[1].key
        await pilot.press("s")  # starts the (gated) rebuild of prompt 2
        await pilot.pause()
        assert app.main.busy and app.main.book.index == 1
        await pilot.press("w")  # back to prompt 1 before it finished
        await settle(app, pilot)
        assert gated.cancelled_seen and app.main.shown[0] == first and app.main.book.index == 0
        assert not [n for n, sev in app.notes if sev == "error"]
        gated.release.set()
        await pilot.press("s")
        await settle(app, pilot)
        assert app.main.shown[0] == gated.gated_key
