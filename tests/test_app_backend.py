"""The UI depends on the backend interface only: it runs on a second implementation (a
table-driven backend with no influence and no lens) and never imports the engine."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from app_fixtures import SIZE, RecordingApp, screen_text, settle
from app_fixtures import app_settings as settings_for
from fake_backend import TableBackend

from explorer.backend import Backend
from explorer.ui.views import ColourLayer, LayerView

UI_DIR = Path(__file__).resolve().parents[1] / "explorer" / "ui"


def test_the_table_backend_satisfies_the_protocol():
    assert isinstance(TableBackend(), Backend)


async def test_views_the_backend_cannot_serve_say_so():
    backend = TableBackend()
    app = RecordingApp(settings_for(layer_prob=True), engine=backend)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = app.main.book.current.ids
        assert app.main.table.candidates == backend.sync("check", ids)[-1].top
        assert "table · cpu · float32" in screen_text(app)
        for _ in range(3):
            await pilot.press("e")
        await settle(app, pilot)
        assert app.main.colour is ColourLayer.INFLUENCE
        assert "Attention influence is not available on this backend (fake)." in screen_text(app)
        await pilot.press("p")
        await settle(app, pilot)
        assert app.main.layer_view is LayerView.PROBABILITIES
        assert "The logit lens is not available on this backend (fake)." in screen_text(app)
        await pilot.press("right", "left", "right")  # the session goes on as usual
        await settle(app, pilot)
        assert len(app.main.book.current.ids) == len(ids) + 1
        assert not [note for note, severity in app.notes if severity == "error"]


def test_no_ui_module_imports_the_engine():
    for path in sorted(UI_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith(("explorer.engine", "torch", "transformers")), (path.name, name)


def test_importing_the_app_loads_neither_the_engine_nor_torch():
    code = ("import sys, explorer.ui.app; "
            "print(sorted(m for m in ('explorer.engine', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class BrokenBackend(TableBackend):
    """Reads prompts, then fails on every forward pass (a driver error, an OOM...)."""

    def sync(self, key, ids, *, progress=None, cancelled=None):
        raise RuntimeError("the device went away")


async def test_a_failing_first_prompt_is_a_failed_start():
    app = RecordingApp(settings_for(), engine=BrokenBackend())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.start_failed and "the device went away" in app.start_error
        text = screen_text(app)
        assert "RuntimeError: the device went away" in text and "ctrl+q" in text
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.return_code == 1
