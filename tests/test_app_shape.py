"""Issue 21's "small App": the App wires screens; the main screen owns its keys and
widgets; the keys' work is in plain parts, not mixins overriding each other; no UI module
is over ~350 lines. Read from the classes and files themselves."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.screen import Screen

import explorer.ui

UI = Path(explorer.ui.__file__).parent


def test_the_app_is_one_small_class_over_textuals_app():
    from explorer.ui.app import TokenExplorerApp

    assert TokenExplorerApp.__bases__ == (App,)  # no mixins
    assert len((UI / "app.py").read_text(encoding="utf-8").splitlines()) <= 160


def test_the_main_screen_owns_the_main_keys_and_its_parts_are_plain_objects():
    from explorer.ui.app import TokenExplorerApp
    from explorer.ui.main_screen import MainScreen

    ids = {b.id for b in MainScreen.BINDINGS}
    assert {"prompt.append", "prompt.pop", "view.colour", "sampler.sample", "sampler.constraint",
            "tracked.pin_text", "app.model", "view.tree"} <= ids
    app_ids = {b.id for b in TokenExplorerApp.BINDINGS}
    assert app_ids == {"app.keys", "app.quit"}  # what start-up and the tree screen share
    assert MainScreen.__bases__ == (Screen,)
    from explorer.ui.constraint_actions import ConstraintActions
    from explorer.ui.model_switch import ModelSwitcher
    from explorer.ui.sampler_actions import SamplerActions
    from explorer.ui.view_actions import ViewActions

    for part in (ConstraintActions, ModelSwitcher, SamplerActions, ViewActions):
        assert part.__bases__ == (object,), part


def test_no_ui_module_is_over_350_lines():
    long = {p.name: n for p in UI.glob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 350}
    assert not long
