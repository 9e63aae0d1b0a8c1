"""The prompt, token by token, with visible boundaries and the active colour layer.

Drawn with the line API (as Toolong draws its log view): the prompt is a list of styled
runs, laid out into lines by folding at the widget's width, and each line's Strip is
cached. Appending or popping a token changes the runs at the end only, so only the lines
from the word holding the first changed run on are laid out and painted again; a long
prompt costs no more per key than a short one. Lines break as a Static breaks the same
text (rich's word wrap): ordinary whitespace is drawn visible (␣ ↵ ⇥), so most prompts
are folded cell by cell, but a token may hold other spaces (U+00A0, U+3000, U+2009, ...):
a line breaks after them when the next word does not fit, and a wrapped line does not
draw the spaces it ends with.
"""

from __future__ import annotations

from typing import Sequence

from rich.cells import get_character_cell_size
from rich.segment import Segment as RichSegment
from rich.style import Style
from textual.color import Color
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from explorer.ui.colors import Scale
from explorer.ui.prompt_fold import BREAK, Position, Run, fold
from explorer.ui.token_display import Kind, Segment, group_value

NEWLINE = "↵"
# Marks on top of the token colours (the notes line in the panel's border says what they mean).
KIND_STYLE = {
    Kind.TOKEN: Style(),
    Kind.GROUP: Style(underline=True),
    Kind.PARTIAL: Style(italic=True, underline=True),
    Kind.SPECIAL: Style(bold=True, italic=True),
}
KIND_NOTE = {
    Kind.GROUP: "underlined: one character from several byte tokens",
    Kind.PARTIAL: "<C3…>: bytes of an unfinished character",
    Kind.SPECIAL: "bold italic: special token",
}
# How appended tokens got there, as a text colour (theme colour names) over any layer.
ORIGIN_COLOUR = {"picked": "success", "sampled": "accent", "forced": "error"}

HIGHLIGHT = Style(reverse=True, bold=True)  # the position cursor's token


class PromptView(Widget):
    """Renders segments (token_display.segments) with one style each.

    Without a colour layer, segments alternate between two theme shades; with one, each
    gets its scale colour and every other one is slightly darker, so equal neighbours
    still show where one ends.
    """

    DEFAULT_CSS = """
    PromptView {
        height: auto;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._segments: list[Segment] = []
        self._origins: list[str] = []
        self._values = self._scale = None
        self._joint = False
        self._plain_cache: tuple[str, tuple[Style, Style]] | None = None  # (theme, styles)
        self._runs: list[Run] = []
        self._starts: list[Position] = [(0, 0)]  # line starts at self._width
        self._width = 0
        self._strips: dict[int, Strip] = {}
        self._base: Style | None = None
        self._highlight: int | None = None  # the position cursor's token (issue 23)
        self._run_tokens: list[int] = []  # per run: the first token of its segment (-1: none)

    # -- data -----------------------------------------------------------------------------
    def show(
        self,
        segments: Sequence[Segment],
        values: Sequence[float | None] | None = None,
        scale: Scale | None = None,
        *,
        joint: bool = False,
        origins: Sequence[str] = (),
        highlight: int | None = None,
    ) -> None:
        """values: one per token; joint: a group's value is the product of its tokens';
        origins: one per token ("prompt", "picked", "sampled", "forced"), or none;
        highlight: the token the position cursor is on (drawn reversed), or None."""
        self._segments, self._values, self._scale, self._joint = list(segments), values, scale, joint
        self._origins = list(origins)
        self._highlight = highlight
        self._set_runs(self._build())

    @property
    def text(self) -> str:
        """The prompt as drawn (visible whitespace, line breaks after ↵)."""
        return "".join(text for text, _ in self._runs)

    @property
    def line_count(self) -> int:
        return len(self._starts)

    def _set_runs(self, runs: list[Run]) -> None:
        old = self._runs
        same = 0
        limit = min(len(old), len(runs))
        while same < limit and old[same] == runs[same]:
            same += 1
        if same == len(old) == len(runs):
            return
        self._runs = runs
        if not self._width:
            self.refresh(layout=True)  # laid out once the widget has a size
            return
        line = self._first_moved_line(same)
        height = len(self._starts)
        self._starts = self._starts[:line] + fold(runs, self._starts[line], self._width)
        for y in [y for y in self._strips if y >= line]:
            del self._strips[y]
        if len(self._starts) != height:
            self.refresh(layout=True)
        else:
            self.refresh(Region(0, line, self.size.width, height - line))

    def _first_moved_line(self, same: int) -> int:
        """The first line a change from run `same` on can lay out anew. Rich's wrap is
        greedy, so a line's start depends only on the text before it: lines before the
        word the change continues stay, and so does the line before that word's, unless
        the word shrank onto it (a pop). A word already longer than the width was
        folded at fixed cells: only the line before the change can move then."""
        line = self._line_of((same, 0))
        budget = self._width + 1  # cells: past this the word is folded, wherever it began
        word_start: Position = (same, 0)
        in_word = False
        index = same - 1
        while index >= 0 and budget > 0:
            text = self._runs[index][0]
            if text == "\n":
                break
            for k in range(len(text) - 1, -1, -1):
                if text[k].isspace():
                    if in_word:
                        return max(0, min(line, self._line_of(word_start)) - 1)
                else:
                    in_word = True
                budget -= get_character_cell_size(text[k])
                word_start = (index, k)
                if budget <= 0:
                    return max(0, line - 1)
            index -= 1
        return max(0, min(line, self._line_of(word_start)) - 1)

    def _line_of(self, position: Position) -> int:
        """The last line beginning at or before `position`."""
        lo, hi = 0, len(self._starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._starts[mid] <= position:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _layout(self, width: int) -> None:
        if width != self._width:
            self._width = width
            self._starts = fold(self._runs, (0, 0), width) if width > 0 else [(0, 0)]
            self._strips.clear()

    # -- styles ---------------------------------------------------------------------------
    def _origin_colours(self) -> dict[str, Color]:
        theme = self.app.current_theme
        return {origin: Color.parse(getattr(theme, name, None) or theme.primary)
                for origin, name in ORIGIN_COLOUR.items()}

    def _origin_styles(self) -> dict[str, Style]:
        return {origin: Style(color=c.rich_color) for origin, c in self._origin_colours().items()}

    @property
    def notes(self) -> str:
        """What the marks in the current prompt mean ("" when there are none)."""
        kinds = {seg.kind for seg in self._segments}
        notes = [note for kind, note in KIND_NOTE.items() if kind in kinds]
        present = set(self._origins)
        shown = [o for o in ORIGIN_COLOUR if o in present]
        if shown:
            colours = self._origin_colours()  # each word in its own colour (content markup)
            notes.append("text: " + " ".join(f"[{colours[o].hex}]{o}[/]" for o in shown))
        return " · ".join(notes)

    def _plain_styles(self) -> tuple[Style, Style]:
        # Computing the theme's variables costs milliseconds: once per theme.
        theme = self.app.theme
        if self._plain_cache is not None and self._plain_cache[0] == theme:
            return self._plain_cache[1]
        styles = self._theme_styles()
        self._plain_cache = (theme, styles)
        return styles

    def _theme_styles(self) -> tuple[Style, Style]:
        variables = self.app.get_css_variables()
        first = Color.parse(variables.get("surface", "#1e1e1e"))
        second = Color.parse(variables.get("panel", "#2b2b2b"))
        if first == second:
            second = first.lighten(0.08)
        return Style(bgcolor=first.rich_color), Style(bgcolor=second.rich_color)

    def _build(self) -> list[Run]:
        runs: list[Run] = []
        owners: list[int] = []
        plain = self._plain_styles() if self._scale is None else None
        marks = self._origin_styles() if self._origins else {}
        for i, seg in enumerate(self._segments):
            if self._scale is None:
                style = plain[i % 2]
            else:
                value = None
                if self._values is not None:
                    value = group_value(self._values, seg.tokens, joint=self._joint)
                style = self._scale.style(value, shade=0.15 if i % 2 else 0.0)
            style += KIND_STYLE[seg.kind]
            first = seg.tokens[0] if seg.tokens else None
            if first is not None and first < len(self._origins) and self._origins[first] in marks:
                style += marks[self._origins[first]]
            if self._highlight is not None and self._highlight in seg.tokens:
                style += HIGHLIGHT
            # The visible ↵ stays in the token; the real line break keeps the prompt's shape.
            pieces = seg.text.split(NEWLINE)
            owner = -1 if first is None else first
            for j, piece in enumerate(pieces):
                if j:
                    runs.append((NEWLINE, style))
                    runs.append(BREAK)
                    owners += [owner, -1]
                if piece:
                    runs.append((piece, style))
                    owners.append(owner)
        self._run_tokens = owners
        return runs

    # -- clicks ---------------------------------------------------------------------------
    class Clicked(Message):
        """A prompt token was clicked: put the position cursor there (issue 23)."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def token_at(self, x: int, y: int) -> int | None:
        """The index of the (first) token drawn at cell (x, y), or None."""
        if not 0 <= y < len(self._starts) or x < 0:
            return None
        start = self._starts[y]
        end = self._starts[y + 1] if y + 1 < len(self._starts) else (len(self._runs), 0)
        cells = 0
        for index in range(start[0], min(end[0] + 1, len(self._runs))):
            text = self._runs[index][0]
            a = start[1] if index == start[0] else 0
            b = end[1] if index == end[0] else len(text)
            for ch in text[a:b]:
                cells += get_character_cell_size(ch)
                if cells > x:
                    owner = self._run_tokens[index] if index < len(self._run_tokens) else -1
                    return owner if owner >= 0 else None
        return None

    def on_click(self, event) -> None:
        index = self.token_at(event.x, event.y)
        if index is not None:
            self.post_message(self.Clicked(index))

    # -- drawing --------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # theme or CSS changed the widget's own colours
        self._base = None

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return container.width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._layout(width)
        return len(self._starts)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        self._layout(width)
        if self._base is None:
            self._base = self.rich_style
        strip = self._strips.get(y)
        if strip is None:
            strip = self._strips[y] = self._render(y, width)
        return strip

    def _render(self, y: int, width: int) -> Strip:
        if y >= len(self._starts):
            return Strip.blank(width, self._base)
        start = self._starts[y]
        end = self._starts[y + 1] if y + 1 < len(self._starts) else (len(self._runs), 0)
        base = self._base
        pieces = []
        for index in range(start[0], min(end[0] + 1, len(self._runs))):
            text, style = self._runs[index]
            if text == "\n":
                continue
            a = start[1] if index == start[0] else 0
            b = end[1] if index == end[0] else len(text)
            if b > a:
                pieces.append([text[a:b], style])
        wrapped = end[1] > 0 or (end[0] < len(self._runs) and self._runs[end[0] - 1][0] != "\n")
        if wrapped:  # a Static drops the spaces a wrapped line ends with
            while pieces:
                pieces[-1][0] = pieces[-1][0].rstrip()
                if pieces[-1][0]:
                    break
                pieces.pop()
        segments = [RichSegment(text, base + style) for text, style in pieces]
        # Unpadded, as a Static's lines are: the styles cache pads them the same way (an
        # empty line holds one empty segment in the widget's style, as a Static's does).
        strip = Strip(segments or [RichSegment("", base)])
        # (The last line of a paragraph may end in spaces past the width: cut, as there.)
        return strip.crop(0, width) if strip.cell_length > width else strip
