"""The position cursor in the app (issue 23), on the default model (SmolLM2-135M-Instruct,
loaded once for this file) with Pilot pressing real keys: `[` three times shows
`position n-2/n` and the distribution before that token (equal to a full forward pass of
the tokens before it); `→` on another row makes prompt 2 = those tokens + that row's
token; `w` shows the original intact. A click on a prompt token moves the cursor there."""

from __future__ import annotations

import pytest
import torch
from app_fixtures import RecordingApp, screen_text, settle
from app_fixtures import app_settings as settings_for

from explorer.config import ModelSettings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def smollm2():
    from explorer.engine import Engine

    engine = Engine.load(ModelSettings(name="smollm2", device="cpu"), layer_prob=True)
    yield engine
    engine.close()


def make(tmp_path, engine, text="The quick brown fox jumps over the lazy"):
    settings = settings_for(tmp_path, model=ModelSettings(name="smollm2", device="cpu"))
    return RecordingApp(settings, engine=engine, prompt_text=text)


@torch.no_grad()
def top_before(engine, ids, k=30) -> list[int]:
    logits = engine.model(torch.tensor([list(ids)])).logits[0, -1].double()
    return torch.topk(torch.log_softmax(logits, -1), k).indices.tolist()


async def test_back_three_then_branch_then_back_to_the_original(tmp_path, smollm2):
    app = make(tmp_path, smollm2)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        main = app.main
        original = main.book.current.ids
        n = len(original)
        for _ in range(3):
            await pilot.press("left_square_bracket")
            await settle(app, pilot)
        index = n - 3  # 0-based: the token at position n-2 (counted from 1)
        assert main.core.cursor.index == index
        text = screen_text(app)
        assert f"position {n - 2}/{n}" in text.splitlines()[0]  # the header
        assert f"before position {n - 2}/{n}" in text
        shown = [c.token_id for c in main.table._candidates]
        assert shown[:30] == top_before(smollm2, original[:index])  # the distribution before it
        table = main.core.cursor.table()
        assert main.table.cursor_row == table.token_row  # resting on the token that followed
        assert table.sampler is not None  # p_final there (the kept row)
        row = 1 if table.token_row != 1 else 2
        await pilot.press(*["up"] * 40, *["down"] * row)
        await pilot.press("right")
        await settle(app, pilot)
        assert main.book.index == 1 and len(main.book) == 2
        assert main.book.current.ids == original[:index] + (shown[row],)
        assert main.book.current.branched_from == (1, index + 1)
        assert main.core.cursor.index is None  # the live end of the branch
        assert "prompt 2/2" in screen_text(app).splitlines()[0]
        await pilot.press("w")
        await settle(app, pilot)
        assert main.book.index == 0 and main.book.current.ids == original
        assert [r.token_id for r in main.records] == list(original)


async def test_a_click_on_a_token_and_forward_past_the_end(tmp_path, smollm2):
    app = make(tmp_path, smollm2)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        main = app.main
        n = len(main.book.current.ids)
        await pilot.click("#prompt", offset=(0, 0))  # the first token: no distribution before it
        await settle(app, pilot)
        assert main.core.cursor.index == 1
        prompt = main.query_one("#prompt")
        x = next(x for x in range(60) if prompt.token_at(x, 0) == 3)
        await pilot.click("#prompt", offset=(x, 0))
        await settle(app, pilot)
        assert main.core.cursor.index == 3 and f"position 4/{n}" in screen_text(app)
        for _ in range(n):
            await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert main.core.cursor.index is None and "position " not in screen_text(app).splitlines()[0]


async def test_x_on_a_branch_saves_where_it_branched(tmp_path, smollm2):
    import json

    app = make(tmp_path, smollm2, text="One two three four")
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        n = len(app.main.book.current.ids)
        await pilot.press("left_square_bracket", "left_square_bracket", "right")
        await settle(app, pilot)
        assert app.main.book.current.branched_from == (1, n - 1)
        await pilot.press("x")
        await settle(app, pilot)
    saved = list((tmp_path / "saved").glob("*.json"))
    assert len(saved) == 1
    assert json.loads(saved[0].read_text())["branched_from"] == {"prompt": 1, "position": n - 1}
