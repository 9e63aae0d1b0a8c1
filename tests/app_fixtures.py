"""Helpers for the app tests: the real engine on the embedded model, loaded once, and a way
to wait until the app has nothing left to do (workers done, queue empty) without sleeping."""

from __future__ import annotations

import html
import os
import re
from dataclasses import replace
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may come from a model hub

import pytest

from explorer.config import EMBEDDED_MODEL_DIR, ModelSettings, Settings
from explorer.sampling import SamplingConfig
from explorer.ui.app import TokenExplorerApp

SIZE = (120, 40)
_engine = None


def embedded_engine():
    """One Engine for the whole test run (with the lens on, so layer views work); every app
    gets it injected, which keeps the suite fast while exercising the real model."""
    global _engine
    if _engine is None:
        from explorer.engine import Engine

        _engine = Engine.load(ModelSettings(name="embedded"), layer_prob=True)
    return _engine


def app_settings(tmp_path: Path | None = None, **overrides) -> Settings:
    # Pinned to the embedded model, whatever the app's default model becomes.
    # A fixed sampler seed: the table's subtitle shows it, and draws must repeat.
    settings = Settings(model=ModelSettings(name="embedded"), sampling=SamplingConfig(values={"seed": 1234}))
    if tmp_path is not None:
        settings = replace(settings, prompts=replace(settings.prompts, save_dir=str(tmp_path / "saved")))
    return replace(settings, **overrides)


class RecordingApp(TokenExplorerApp):
    """The real app, also keeping every notification so tests can assert on them."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[tuple[str, str]] = []

    def notify(self, message, *, title="", severity="information", **kwargs) -> None:
        self.notes.append((str(message), severity))
        super().notify(message, title=title, severity=severity, **kwargs)


def make_app(tmp_path=None, *, engine=True, input_path=None, **overrides) -> RecordingApp:
    return RecordingApp(
        app_settings(tmp_path, **overrides),
        input_path=input_path,
        engine=embedded_engine() if engine else None,
    )


async def settle(app: TokenExplorerApp, pilot) -> None:
    """Wait until start-up, queued presses and view fetches are all done."""
    from textual.worker import WorkerFailed

    for _ in range(10_000):
        try:
            await app.workers.wait_for_complete()
        except WorkerFailed:
            pass  # the app's Worker.StateChanged handler reports it; tests check the notes
        await pilot.pause()
        if app.is_idle or app.start_failed:
            await pilot.pause()
            return
    raise AssertionError("the app never settled")


_SVG_TEXT = re.compile(r'<text [^>]*?x="([0-9.]+)"[^>]*?clip-path="url\(#[^)]*-line-(\d+)\)"[^>]*>(.*?)</text>')
_CHAR_WIDTH = 20 * 0.61  # rich's export_svg: 20 px characters, aspect ratio 0.61


def screen_text(app: TokenExplorerApp) -> str:
    """Plain text of the whole screen as the user sees it, read back from the app's own
    screenshot (App.export_screenshot, the public route to what is on screen)."""
    from rich.cells import cell_len

    width, height = app.size
    lines = [[" "] * width for _ in range(height)]
    for x, line, text in _SVG_TEXT.findall(app.export_screenshot()):
        col, row = round(float(x) / _CHAR_WIDTH), int(line)
        for ch in html.unescape(text).replace("\xa0", " "):
            if row < height and col < width:
                lines[row][col] = ch
                for k in range(1, cell_len(ch)):  # a wide character covers the next cell
                    if col + k < width:
                        lines[row][col + k] = ""
            col += cell_len(ch)
    return "\n".join("".join(line).rstrip() for line in lines)


_SVG_RECT = re.compile(r'<rect fill="(#[0-9a-fA-F]{6})" x="([0-9.]+)" y="([0-9.]+)" width="([0-9.]+)"')
_LINE_HEIGHT = 20 * 1.22


def screen_backgrounds(app: TokenExplorerApp) -> list[list[str | None]]:
    """Background colour ("#rrggbb") of every cell on screen, from the same screenshot."""
    width, height = app.size
    grid: list[list[str | None]] = [[None] * width for _ in range(height)]
    for fill, x, y, w in _SVG_RECT.findall(app.export_screenshot()):
        row, col = round((float(y) - 1.5) / _LINE_HEIGHT), round(float(x) / _CHAR_WIDTH)
        for k in range(round(float(w) / _CHAR_WIDTH)):
            if 0 <= row < height and 0 <= col + k < width:
                grid[row][col + k] = fill.lower()
    return grid


requires_model = pytest.mark.skipif(
    not (EMBEDDED_MODEL_DIR / "config.json").exists(), reason="embedded model not built yet"
)
