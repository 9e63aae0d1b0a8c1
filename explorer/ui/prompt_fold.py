"""Where the prompt panel's lines begin (explorer.ui.prompt_view): styled runs folded at a
width exactly as rich wraps the same text in a Static. Split from prompt_view.py so that
the widget (styles, clicks, drawing) and the layout rule each stay small."""

from __future__ import annotations

from bisect import bisect_right
from typing import Sequence

from rich._wrap import divide_line  # what Textual's Content (a Static) wraps with
from rich.style import Style

Run = tuple[str, Style]  # text without line breaks; BREAK is a hard line break
BREAK: Run = ("\n", Style())
Position = tuple[int, int]  # (run index, character offset in it)


def fold(runs: Sequence[Run], start: Position, width: int) -> list[Position]:
    """Where each line begins, from `start` (itself a line start) to the end: each
    paragraph (the text between BREAKs) wrapped as rich wraps it (words are whitespace-
    separated, a word that does not fit begins the next line, one longer than `width`
    is folded cell by cell). The last line may be empty (the text ends with a break)."""
    starts = [start]
    index, first = start
    while index < len(runs):
        offsets: list[int] = []  # paragraph offset where each piece begins
        pieces: list[Position] = []
        parts: list[str] = []
        n = 0
        while index < len(runs) and runs[index][0] != "\n":
            text = runs[index][0][first:] if first else runs[index][0]
            offsets.append(n)
            pieces.append((index, first))
            parts.append(text)
            n += len(text)
            index, first = index + 1, 0
        if n and width > 0:
            for cut in divide_line("".join(parts), width, fold=True):
                j = bisect_right(offsets, cut) - 1
                starts.append((pieces[j][0], pieces[j][1] + cut - offsets[j]))
        if index < len(runs):  # a BREAK: the next line begins after it
            index, first = index + 1, 0
            starts.append((index, 0))
    return starts
