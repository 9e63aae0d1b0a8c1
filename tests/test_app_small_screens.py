"""Small terminals (80x24, 40x15) and keys sent in one burst or during start-up, read back
from what is on screen (issue 20, items 5 and 6)."""

from __future__ import annotations

import re
import threading

import pytest
from textual import events
from textual.widgets import Input

from app_fixtures import RecordingApp, embedded_engine, make_app, requires_model, screen_text, settle, app_settings

pytestmark = requires_model

NUMBER = re.compile(r"-?\d+(?:\.\d+)?%?")


def table_lines(text: str) -> tuple[str, list[str]]:
    """The table's header line and its row lines, as drawn (border and scrollbar cut off)."""
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if "─ next token" in line)
    body = []
    for line in lines[top + 1:]:
        if line.startswith("╰"):
            break
        body.append(line[1:-1].rstrip("▁▂▃▄▅▆▇█ "))
    return body[0], body[1:]


@pytest.mark.parametrize("size", [(80, 24), (40, 15)])
@pytest.mark.parametrize("keys", [("right",), ("right", "p")], ids=["plain", "layer-view"])
async def test_every_number_in_the_table_is_whole(size, keys):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        for key in keys:
            await pilot.press(key)
            await settle(app, pilot)
        header, rows = table_lines(screen_text(app))
        columns = app.main.table.columns
        for label in columns:
            if not label.startswith("layers"):
                assert re.search(rf"(^|\s){re.escape(label)}(\s|$)", header), (label, header)
        assert "p_base" in columns  # the probabilities stay, whatever goes
        assert len(rows) >= (4 if size[1] == 15 else 10)
        for i, line in enumerate(rows):
            c = app.main.table.candidates[i]
            # Each shown column's number, in column order (None: any p_final percentage).
            wanted = {"#": str(i + 1), "id": str(c.token_id), "p_base": f"{c.prob:.2%}",
                      "p_final": None, "log p": f"{c.logprob:.3f}"}
            expected = [wanted[label] for label in columns if label in wanted]
            if "p_final" in columns and ("excluded" in line or "forbidden" in line):
                expected.remove(None)
            rest = line.replace(c.text, " ", 1)  # a token's own digits are not numbers
            shown = NUMBER.findall(rest)
            assert len(shown) == len(expected), (line, expected)
            for got, want in zip(shown, expected):
                if want is not None:
                    assert got == want, (line, want)


async def test_header_keeps_whole_parts_at_80_columns_and_says_1_token(tmp_path):
    one = tmp_path / "one.txt"
    one.write_text("The")
    app = make_app(input_path=one)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert len(app.main.book.current.ids) == 1
        header = screen_text(app).splitlines()[0]
        assert header.rstrip().endswith("colour: none"), header
        assert "· 1 token  │" in header and "1 tokens" not in header, header
        await pilot.press("right")
        await settle(app, pilot)
        assert "· 2 tokens  │" in screen_text(app).splitlines()[0]


def dialog_text(text: str, title: str) -> str:
    """The text inside the box titled `title` (the screen around it cut off)."""
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if f"╭─ {title}" in line)
    left = lines[top].index("╭")
    right = lines[top].index("╮", left)
    inside = []
    for line in lines[top + 1:]:
        if line[left:left + 1] == "╰":
            break
        inside.append(line[left + 1:right])
    return " ".join(inside)


@pytest.mark.parametrize("size", [(160, 50), (80, 24), (40, 15)])
@pytest.mark.parametrize("key,title,hint", [
    ("t", "force text", "Type text to append as tokens (no special tokens added; \\n for a newline). "
                        "Each token shows its p_base."),
    ("M", "pin tokens by text or id", "Type text; every token of it is tracked (a leading space is "
                                      "part of a token), or token ids as #263 (several: #263, #5)."),
])
async def test_dialog_instructions_are_all_on_screen(size, key, title, hint):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await pilot.press(key)
        await settle(app, pilot)
        inside = dialog_text(screen_text(app), title)
        assert " ".join(hint.split()) in " ".join(inside.split())


@pytest.mark.parametrize("key,target", [("c", "#apply"), ("o", "#stops")])
async def test_panels_scroll_to_their_last_controls_at_40x15(key, target):
    app = make_app()
    async with app.run_test(size=(40, 15)) as pilot:
        await settle(app, pilot)
        await pilot.press(key)
        await settle(app, pilot)
        app.screen.query_one(target).focus()  # focus scrolls it into view, as tab does
        await settle(app, pilot)
        text = screen_text(app)
        if key == "c":
            assert re.search(r"apply\s+clear\s+cancel", text), text
        else:
            assert "autoplay: stop at" in text, text
        widget = app.screen.query_one(target)
        assert app.screen.region.contains_region(widget.region)


def post_keys(app, keys: str) -> None:
    """Keys as a terminal sends them in one burst: all queued before any is handled."""
    for ch in keys:
        app.post_message(events.Key(ch, ch))


@pytest.mark.parametrize("key,title", [("t", "force text"), ("M", "pin tokens by text or id")])
async def test_text_typed_right_behind_the_dialog_key_reaches_the_dialog(key, title):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        post_keys(app, key + "abc")
        await settle(app, pilot)
        assert app.screen.query_one(Input).value == "abc"
        assert len(app.main.book) == 1  # `a` (remove prompt) did not act on the main screen
        assert "abc" in dialog_text(screen_text(app), title)


class GatedEngine:
    """The embedded engine, whose start-up reading of the prompt waits for the test: keys
    are then certainly pressed during start-up."""

    def __init__(self, engine, gate: threading.Event) -> None:
        self._engine, self._gate = engine, gate

    def encode(self, *args, **kwargs):
        self._gate.wait(30)
        return self._engine.encode(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._engine, name)


async def test_keys_pressed_during_start_up_act_after_load():
    gate = threading.Event()
    app = RecordingApp(app_settings(), engine=GatedEngine(embedded_engine(), gate))
    async with app.run_test(size=(100, 30)) as pilot:
        post_keys(app, "detxy")  # fork, colour, force text "xy"
        await pilot.pause()
        assert not app.started
        gate.set()
        await settle(app, pilot)
        assert len(app.main.book) == 2
        assert app.main.colour.value == "probability"
        assert app.screen.query_one(Input).value == "xy"


async def test_a_long_file_opens_scrolled_to_its_end(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("The quick brown fox jumps over the lazy dog. " * 55 + "THE END marker")
    app = make_app(input_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert len(app.main.book.current.ids) > 500
        assert "THE␣END␣marker" in screen_text(app)
