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
# How appended tokens got there, as a text colour (theme colour names) over any layer.
ORIGIN_COLOUR = {"picked": "success", "sampled": "accent", "forced": "error"}


class PromptView(Static):
    """Renders segments (token_display.segments) with one style each.

    Without a colour layer, segments alternate between two theme shades; with one, each
    gets its scale colour and every other one is slightly darker, so equal neighbours
    still show where one ends.
    """

    _segments: list[Segment] = []
    _origins: list[str] = []
    _plain_cache: tuple[str, tuple[Style, Style]] | None = None  # (theme, styles)

    def show(
        self,
        segments: Sequence[Segment],
        values: Sequence[float | None] | None = None,
        scale: Scale | None = None,
        *,
        joint: bool = False,
        origins: Sequence[str] = (),
    ) -> None:
        """values: one per token; joint: a group's value is the product of its tokens';
        origins: one per token ("prompt", "picked", "sampled", "forced"), or none."""
        self._segments, self._values, self._scale, self._joint = list(segments), values, scale, joint
        self._origins = list(origins)
        update_static(self, self._build())

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

    def _build(self) -> Text:
        text = Text(no_wrap=False, overflow="fold")
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
            # The visible ↵ stays in the token; the real line break keeps the prompt's shape.
            pieces = seg.text.split(NEWLINE)
            for j, piece in enumerate(pieces):
                if j:
                    text.append(NEWLINE, style)
                    text.append("\n")
                if piece:
                    text.append(piece, style)
        return text
