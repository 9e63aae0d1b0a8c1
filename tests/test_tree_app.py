"""Pilot tests of the token-tree view: `b` grows a tree in a worker, arrows walk it,
`enter` opens the selected branch as a prompt, `x` saves it, `escape` goes back."""

from __future__ import annotations

import json

from app_fixtures import SIZE, RecordingApp, embedded_engine, make_app, requires_model, screen_text, settle
from app_fixtures import app_settings as settings_for
from fake_backend import TableBackend

from explorer.tree import TreeSettings
from explorer.ui.tree_screen import TreeScreen

pytestmark = requires_model
SMALL = TreeSettings(t_min=0.03, t_max=0.3, q_limit=4, max_depth=4, max_nodes=20)


async def test_b_grows_walk_enter_opens_branch_escape_back(tmp_path):
    app = make_app(tmp_path, tree=SMALL)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        prompt_ids = app.main.book.current.ids
        await pilot.press("b")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, TreeScreen) and screen.token_tree is not None
        tree = screen.token_tree
        assert 5 < tree.size <= 20 and tree.prompt_ids == prompt_ids
        # the same tree as the backend grows headless (the app adds nothing of its own)
        engine = embedded_engine()
        engine.sync("tree-check", prompt_ids)
        again = engine.grow_tree("tree-check", SMALL)
        assert [n.path for n in again.nodes()] == [n.path for n in tree.nodes()]
        text = screen_text(app)
        first = tree.children[0]
        assert f"{first.token}" in text and f"p {first.p:.3f}" in text and "nodes" in text

        assert screen.selected is first  # the cursor starts on the most likely token
        await pilot.press("right")  # into its first child
        assert screen.selected is first.children[0]
        await pilot.press("left")  # back to the parent
        assert screen.selected is first
        await pilot.press("down")
        walked = screen.selected
        assert walked is not None and walked is not first
        await pilot.press("x")
        saved = json.loads((tmp_path / "saved").glob("*-tree.json").__next__().read_text())
        assert saved["prompt_ids"] == list(prompt_ids) and len(saved["children"]) == len(tree.children)
        assert saved["children"][0]["p"] == first.p

        await pilot.press("enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, TreeScreen)
        assert len(app.main.book) == 2 and app.main.book.index == 1
        assert app.main.book.current.ids == prompt_ids + walked.path
        assert app.main.shown == (app.main.book.current.key, prompt_ids + walked.path)  # synced, all views apply
        # escape from a fresh tree goes back with the book unchanged
        await pilot.press("b")
        await settle(app, pilot)
        assert isinstance(app.screen, TreeScreen)
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, TreeScreen) and len(app.main.book) == 2


async def test_escape_while_growing_keeps_the_part_grown(tmp_path):
    # a long greedy chain: far more work than the test waits for
    big = TreeSettings(t_min=0.3, t_max=0.3, max_depth=900, max_nodes=5000)
    app = make_app(tmp_path, tree=big)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("b")
        screen = app.screen
        assert isinstance(screen, TreeScreen)
        while screen.progress[0] < 3:  # growing: a few nodes done
            await pilot.pause()
        assert screen.growing and "growing: " in screen_text(app) and "/5000 nodes" in screen_text(app)
        await pilot.press("escape")  # cancel
        await settle(app, pilot)
        assert isinstance(app.screen, TreeScreen) and screen.token_tree is not None
        assert screen.token_tree.stopped == "cancelled" and screen.token_tree.size < 5000
        await pilot.press("escape")  # back
        await settle(app, pilot)
        assert not isinstance(app.screen, TreeScreen) and len(app.main.book) == 1


async def test_backend_without_trees_says_so_in_one_sentence():
    app = RecordingApp(settings_for(), engine=TableBackend())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("b")
        await settle(app, pilot)
        assert not isinstance(app.screen, TreeScreen)
        assert ("Growing token trees is not available on this backend (fake).", "warning") in app.notes
