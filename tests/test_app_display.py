"""What a new user sees: characters made of byte tokens, narrow terminals, the highlighted
row's layer strip, special tokens typed as text, the command palette, remapped keys and the
heatmap's mark for hidden tokens."""

from __future__ import annotations

import json
from dataclasses import replace

from app_fixtures import (SIZE, embedded_engine, make_app, requires_model, screen_backgrounds,
                          screen_text, settle)

from explorer.config import REPO_DIR
from explorer.ui.colors import LAYER
from explorer.ui.heatmap import LayerHeatmap
from explorer.ui.token_display import Kind, column_labels, segments
from explorer.ui.views import LayerView, layer_values

pytestmark = requires_model
UNICODE = REPO_DIR / "prompts" / "unicode.txt"


async def test_unicode_prompt_reads_as_its_text():
    app = make_app(input_path=UNICODE, layer_prob=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        assert "Café,␣naïve,␣東京,␣an␣emoji␣🙂." in text
        assert "<0x" not in text  # no byte shown as hex
        assert "one character from several byte tokens" in text  # the mark is explained
        engine = embedded_engine()
        ids = app.main.book.current.ids
        groups = [s for s in segments(ids, [engine.token_text(i) for i in ids], engine.token_bytes,
                                      engine.special_ids) if s.kind is Kind.GROUP]
        # Each character made of byte tokens is one group, and the group's bytes are the
        # character's UTF-8 bytes (checked against Python's own encoding).
        assert [g.text for g in groups] == ["é", "ï", "東", "京", "🙂"]
        for g in groups:
            assert b"".join(engine.token_bytes(ids[k]) for k in g.tokens) == g.text.encode("utf-8")
        assert sum(len(g.tokens) for g in groups) == 2 + 2 + 3 + 3 + 4
        await pilot.press("p")
        await settle(app, pilot)
        labels = column_labels(segments(ids, [engine.token_text(i) for i in ids],
                                        engine.token_bytes, engine.special_ids), len(ids))
        assert labels.count("+") == sum(len(g.tokens) - 1 for g in groups)


async def test_a_prompt_ending_inside_a_character_shows_a_partial_mark(tmp_path):
    engine = embedded_engine()
    ids = engine.encode("Café")
    assert engine.token_bytes(ids[-2]) == b"\xc3"  # é is two byte tokens in this tokenizer
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"model": "embedded", "token_ids": ids[:-1], "text": "Caf"}))
    app = make_app(input_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        assert "Caf<C3…>" in text and "bytes of an unfinished character" in text


async def test_append_and_pop_win_at_40x15():
    app = make_app()
    async with app.run_test(size=(40, 15)) as pilot:
        await settle(app, pilot)
        start = app.main.book.current.ids
        for key, length in [("right", 1), ("right", 2), ("left", 1), ("l", 2), ("h", 1), ("left", 0)]:
            await pilot.press(key)
            await settle(app, pilot)
            assert app.main.book.current.ids[: len(start)] == start
            assert len(app.main.book.current.ids) == len(start) + length, key
        assert app.main.table.scroll_x == 0


async def test_highlighted_row_keeps_its_layer_strip_colours():
    app = make_app(layer_prob=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("p", "down", "down")
        await settle(app, pilot)
        row = app.main.table.cursor_row
        assert row == 2
        strip = layer_values(app.main.lane.views["candidate_lens"], LayerView.PROBABILITIES)[:, row]
        wanted = ["#%02x%02x%02x" % LAYER.rgb(float(v)) for v in strip]
        candidate = app.main.table.candidates[row]
        lines = screen_text(app).splitlines()
        y = next(i for i, line in enumerate(lines) if f" 3  {candidate.text} " in line)
        fills = screen_backgrounds(app)[y]
        # Every layer's colour is on the highlighted row, in layer order.
        seen = [f for k, f in enumerate(fills) if f in wanted and (k == 0 or fills[k - 1] != f)]
        assert [w for w in wanted if w in seen] == wanted and len(set(wanted)) > 1


async def test_special_token_text_in_a_file_gets_a_notice(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text("Hello<|endoftext|>world")
    app = make_app(input_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        engine = embedded_engine()
        assert any(t in engine.special_ids for t in app.main.book.current.ids)
        warnings = [note for note, severity in app.notes if severity == "warning"]
        assert len(warnings) == 1 and "<|endoftext|>" in warnings[0] and "special token" in warnings[0]
        text = screen_text(app)
        assert "Hello<|endoftext|>world" in text and "bold italic: special token" in text


async def test_plain_text_opens_without_a_notice():
    app = make_app(input_path=UNICODE)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert not app.notes


async def test_command_palette_offers_our_actions():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Save prompt", "Fork prompt", "Remove prompt", "Reset prompt",
                      "Cycle colour layer", "Cycle layer view"):
            assert title in titles
        await pilot.press("ctrl+p")
        await pilot.press(*"Fork prompt")
        await pilot.pause()
        await pilot.press("enter")
        await settle(app, pilot)
        assert len(app.main.book) == 2 and app.main.book.index == 1


async def test_keys_remap_from_settings():
    app = make_app()
    app.settings = replace(app.settings, keys={"prompt.append": "n", "view.colour": "c"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        start = app.main.book.current.ids
        await pilot.press("n")
        await settle(app, pilot)
        assert len(app.main.book.current.ids) == len(start) + 1
        await pilot.press("right")  # no longer bound to append
        await pilot.press("c")
        await settle(app, pilot)
        assert len(app.main.book.current.ids) == len(start) + 1 and app.main.colour.value == "probability"


async def test_heatmap_marks_tokens_hidden_on_the_left():
    app = make_app(layer_prob=True)
    async with app.run_test(size=(60, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await settle(app, pilot)
        heatmap = app.query_one(LayerHeatmap)
        hidden = heatmap.hidden
        assert hidden > 0 and f"◀{hidden}" in screen_text(app)
        # The columns shown are the last ones: hidden + shown = the prompt's length.
        header = next(line for line in screen_text(app).splitlines() if f"◀{hidden}" in line)
        assert header.strip().endswith(app.main.records[-1].text[:3].strip())


async def test_unknown_binding_id_in_keys_is_one_warning():
    app = make_app()
    app.settings = replace(app.settings, keys={"prompt.apend": "n"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        warnings = [note for note, severity in app.notes if severity == "warning"]
        assert len(warnings) == 1 and "'prompt.apend'" in warnings[0] and "prompt.append" in warnings[0]
