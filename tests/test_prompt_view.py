"""The prompt panel's line layout (explorer.ui.prompt_view) against Textual's own Static
given the same rich Text (the panel was a Static before it drew with the line API): the
same lines at every step of a run of appends and pops, though each step lays out only the
lines from the first changed token on."""

from __future__ import annotations

import random

import pytest

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Static

from explorer.ui.colors import PROBABILITY
from explorer.ui.prompt_view import NEWLINE, PromptView
from explorer.ui.token_display import Kind, Segment

# Token texts as token_display draws them: visible whitespace, wide and combining
# characters, newlines (↵ then a real break), an unfinished character.
PIECES = ["The", "␣quick", "␣b", "rown", "↵", "↵↵", "字", "符号", "é", "e\u0301", "🙂", "<C3…>",
          "␣" * 9, "x" * 23, ",", "⇥", "<|im_start|>",
          # Spaces that are not U+0020 stay as they are (not ␣): a Static broke lines at
          # them, as at any whitespace, and dropped them at the end of a wrapped line.
          "\u00a0", "a\u00a0b", "\u3000", "全角\u3000", "\u00a0" * 3, "x\u2009y"]
WIDTH = 29


class Twin(App):
    CSS = f"PromptView, Static {{ width: {WIDTH}; height: auto; }}"

    def compose(self) -> ComposeResult:
        yield PromptView()
        yield Static()


def static_text(segments: list[Segment]) -> Text:
    """The Text the panel gave its Static: the token texts, a line break after each ↵."""
    text = Text(no_wrap=False, overflow="fold")
    for seg in segments:
        for j, piece in enumerate(seg.text.split(NEWLINE)):
            if j:
                text.append(NEWLINE)
                text.append("\n")
            text.append(piece)
    return text


def lines(widget, height: int) -> list[str]:
    return [widget.render_line(y).text for y in range(height)]


@pytest.mark.parametrize("seed", [5, 6, 7])
async def test_lines_match_a_static_through_appends_and_pops(seed):
    rng = random.Random(seed)
    app = Twin()
    broke = False
    async with app.run_test(size=(60, 80)) as pilot:
        view, static = app.query_one(PromptView), app.query_one(Static)
        segments: list[Segment] = []
        for step in range(90):
            if segments and rng.random() < 0.3:
                del segments[-rng.randint(1, min(3, len(segments))):]  # pops
            else:
                text = rng.choice(PIECES)
                kind = Kind.SPECIAL if text.startswith("<|") else Kind.TOKEN
                segments.append(Segment(text, (len(segments),), kind))
            values = [rng.random() for _ in segments] if step % 3 == 0 else None
            view.show(segments, values, PROBABILITY if values else None)
            static.update(static_text(segments))
            await pilot.pause()
            assert view.size.height == static.size.height, step
            assert lines(view, view.size.height) == lines(static, static.size.height), step
            assert view.line_count == view.size.height
            broke |= any(seg.text.startswith("↵") for seg in segments)
        assert broke  # the run did break lines


async def test_a_growing_word_moves_to_the_next_line_at_a_no_break_space():
    """Tokens appended to a word after a U+00A0 / U+3000: once the word no longer fits,
    it begins the next line (a Static's word wrap) and the space is not drawn at the end
    of the line it left; popping them brings it back."""
    app = Twin()
    async with app.run_test(size=(60, 20)) as pilot:
        view, static = app.query_one(PromptView), app.query_one(Static)
        for space in ("\u00a0", "\u3000"):
            head = [Segment("x" * 20, (0,), Kind.TOKEN), Segment(space, (1,), Kind.TOKEN)]
            grown = [Segment(c, (2 + i,), Kind.TOKEN) for i, c in enumerate("abcdefghijk")]
            steps = [head + grown[:n] for n in range(len(grown) + 1)]
            for segments in steps + steps[::-1]:
                view.show(segments)
                static.update(static_text(segments))
                await pilot.pause()
                assert lines(view, view.size.height) == lines(static, static.size.height)
            view.show(head + grown)
            await pilot.pause()
            assert lines(view, 2) == ["x" * 20, "abcdefghijk"]  # the space dropped at the wrap


async def test_a_resize_lays_the_prompt_out_again():
    app = Twin()
    async with app.run_test(size=(60, 20)) as pilot:
        view, static = app.query_one(PromptView), app.query_one(Static)
        segments = [Segment(t, (i,), Kind.TOKEN) for i, t in enumerate(PIECES * 2)]
        view.show(segments)
        static.update(static_text(segments))
        await pilot.pause()
        for width in (13, 40):
            view.styles.width = static.styles.width = width
            await pilot.pause()
            assert lines(view, view.size.height) == lines(static, static.size.height)


async def test_popping_the_token_that_wrapped_a_full_line():
    """A line filled to the last cell, one token more (a new line), then popped: the new
    line goes again (a layout from the changed line alone would keep it, empty)."""
    app = Twin()
    async with app.run_test(size=(60, 20)) as pilot:
        view, static = app.query_one(PromptView), app.query_one(Static)
        full = [Segment("x" * 23, (0,), Kind.TOKEN), Segment("abcdef", (1,), Kind.TOKEN)]
        for segments in (full, full + [Segment("g", (2,), Kind.TOKEN)], full):
            view.show(segments)
            static.update(static_text(segments))
            await pilot.pause()
            assert lines(view, view.size.height) == lines(static, static.size.height)
        assert view.line_count == 1
