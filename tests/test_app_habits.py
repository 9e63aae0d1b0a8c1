"""Issue 26 in the app, with the Pilot pressing the real keys on the embedded model: `M`
takes token ids (`#263`), `L` turns the model off and on ("LLM off": pop and fork apply
with no model work, an append is refused in one sentence, on again computes once), and the
`o` panel sets autoplay's step delay, which autoplay then waits between steps."""

from __future__ import annotations

import time

import torch
from app_fixtures import SIZE, make_app, requires_model, screen_text, settle

from explorer.ui.drawing import MODEL_OFF

pytestmark = requires_model


def last_logprobs(engine, ids) -> torch.Tensor:
    """An independent full forward pass of the engine's own model: log p after ids."""
    model = engine.model
    with torch.no_grad():
        logits = model(torch.tensor([list(ids)], device=model.device)).logits[0, -1].float()
    return torch.log_softmax(logits, dim=-1)


async def test_M_pins_token_ids():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("M", *"#263, #5", "enter")
        await settle(app, pilot)
        assert app.main.tracked_ids == [263, 5]
        series = app.main.lane.views["tracked"]
        want = last_logprobs(app.main.engine, app.main.lane.shown[1])
        assert abs(float(series.logprobs[-1, 0]) - float(want[263])) < 1e-4
        assert abs(float(series.logprobs[-1, 1]) - float(want[5])) < 1e-4
        await pilot.press("M", *"#99999", "enter")
        await settle(app, pilot)
        assert any("Token id 99999 is outside the vocabulary" in text for text, _ in app.notes)
        await pilot.press("M", *"#5", "enter")  # again: unpinned
        await settle(app, pilot)
        assert app.main.tracked_ids == [263]


async def test_L_turns_the_model_off_and_on():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        lane = app.main.lane
        ids = lane.book.current.ids
        await pilot.press("L")
        await settle(app, pilot)
        started = lane.jobs_started
        assert app.main.core.model_off and str(app.main.table.border_subtitle) == MODEL_OFF
        await pilot.press("h", "h", "d", "right")
        await settle(app, pilot)
        assert lane.jobs_started == started  # no model work
        assert lane.book.current.ids == ids[:-2] and len(lane.book) == 2
        assert any("The model is off: append needs it" in text for text, _ in app.notes)
        text = screen_text(app)
        assert "model off" in text
        # The prompt panel shows the book's prompt (the fork of the popped one), uncomputed.
        assert f"prompt · {len(ids) - 2} tokens" in text and "not computed while the model is off" in text
        assert f"prompt 2/2 · {len(ids) - 2} tokens" in text  # the header counts the same
        await pilot.press("t", *" dog", "enter")  # force text: applies with the model off
        await settle(app, pilot)
        forced = app.main.engine.encode_plain(" dog")
        assert lane.book.current.ids == ids[:-2] + tuple(forced) and lane.jobs_started == started
        assert f"prompt · {len(ids) - 2 + len(forced)} tokens" in screen_text(app)
        await pilot.press(*["h"] * len(forced))
        await settle(app, pilot)
        await pilot.press("L")
        await settle(app, pilot)
        assert not app.main.core.model_off and lane.shown[1] == ids[:-2]
        assert lane.jobs_started - started <= 2  # the sync (and a view it needs), once
        assert str(app.main.table.border_subtitle or "") != MODEL_OFF
        want = last_logprobs(app.main.engine, ids[:-2])
        top = app.main.lane.records[-1].top[0]
        assert top.token_id == int(want.argmax()) and abs(top.logprob - float(want.max())) < 1e-4


async def test_the_o_panel_sets_the_autoplay_delay_and_autoplay_waits_it():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("o")
        await pilot.pause()
        panel = app.screen
        panel.query_one("#max-tokens").value = "3"
        panel.query_one("#delay").value = "0.3"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.main.core.autoplay_delay == 0.3
        n = len(app.main.lane.book.current.ids)
        start = time.monotonic()
        await pilot.press("g")
        for _ in range(200):  # autoplay's own timers pace it: wait until it has stopped
            await settle(app, pilot)
            if not app.main.autoplaying:
                break
            await pilot.pause(0.05)
        took = time.monotonic() - start
        assert len(app.main.lane.book.current.ids) == n + 3
        assert took >= 2 * 0.3  # three steps, two delays between them


async def test_input_opens_gemma_files_a_tree_in_the_tree_view(tmp_path):
    import json

    from explorer import cli
    from explorer.tree.node import preorder
    from explorer.ui.tree_screen import TreeScreen

    path = tmp_path / "tree.json"
    assert cli.main(["tree", "--model", "embedded", "--prompt", "Once upon a time", "--max-nodes", "9",
                     "--json", str(path), "--format", "gemma"]) == 0
    data = json.loads(path.read_text())
    app = make_app(input_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        engine = app.main.engine
        assert app.main.lane.shown[1] == tuple(engine.encode("Once upon a time"))
        screen = app.screen
        assert isinstance(screen, TreeScreen) and screen.token_tree is not None
        nodes = list(preorder(screen.token_tree.children))
        stack, want = list(reversed(data["tree"]["children"])), []
        while stack:
            item = stack.pop()
            want.append(item)
            stack.extend(reversed(item["children"]))
        assert [(n.token_id, round(n.p, 9), n.depth) for n in nodes] == \
               [(w["token_id"], round(w["prob"], 9), w["depth"]) for w in want]
        assert "read from a file" in screen_text(app)
        await pilot.press("enter")  # the branch under the cursor (the prompt row: none)
        await settle(app, pilot)


async def test_input_opens_a_gemma_logprobs_file_as_prompt_and_response(tmp_path):
    import json

    line = {"prompt": "Once upon a time", "response": " there was",
            "data": [{"token": " there", "logprob": -1.0, "prob": 36.8, "other_tokens": []},
                     {"token": " was", "logprob": -1.0, "prob": 36.8, "other_tokens": []}]}
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps(line) + "\n")
    app = make_app(input_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        engine = app.main.engine
        want = tuple(engine.encode("Once upon a time")) + tuple(engine.encode_plain(" there")) \
            + tuple(engine.encode_plain(" was"))
        assert app.main.lane.shown[1] == want
