"""The prompt, token by token, with visible boundaries and the active colour layer."""

from __future__ import annotations

from typing import Sequence

from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.widgets import Static

from explorer.ui.colors import Scale
from explorer.ui.repaint import update_static
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


class PromptView(Static):
    """Renders segments (token_display.segments) with one style each.

    Without a colour layer, segments alternate between two theme shades; with one, each
    gets its scale colour and every other one is slightly darker, so equal neighbours
    still show where one ends.
    """

    _segments: list[Segment] = []
    _plain_cache: tuple[str, tuple[Style, Style]] | None = None  # (theme, styles)

    def show(
        self,
        segments: Sequence[Segment],
        values: Sequence[float | None] | None = None,
        scale: Scale | None = None,
        *,
        joint: bool = False,
    ) -> None:
        """values: one per token; joint: a group's value is the product of its tokens'."""
        self._segments, self._values, self._scale, self._joint = list(segments), values, scale, joint
        update_static(self, self._build())

    @property
    def notes(self) -> str:
        """What the marks in the current prompt mean ("" when there are none)."""
        kinds = {seg.kind for seg in self._segments}
        return " · ".join(note for kind, note in KIND_NOTE.items() if kind in kinds)

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

    def _build(self) -> Text:
        text = Text(no_wrap=False, overflow="fold")
        plain = self._plain_styles() if self._scale is None else None
        for i, seg in enumerate(self._segments):
            if self._scale is None:
                style = plain[i % 2]
            else:
                value = None
                if self._values is not None:
                    value = group_value(self._values, seg.tokens, joint=self._joint)
                style = self._scale.style(value, shade=0.15 if i % 2 else 0.0)
            style += KIND_STYLE[seg.kind]
            # The visible ↵ stays in the token; the real line break keeps the prompt's shape.
            pieces = seg.text.split(NEWLINE)
            for j, piece in enumerate(pieces):
                if j:
                    text.append(NEWLINE, style)
                    text.append("\n")
                if piece:
                    text.append(piece, style)
        return text
