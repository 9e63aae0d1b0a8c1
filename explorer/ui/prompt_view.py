"""The prompt, token by token, with visible boundaries and the active colour layer."""

from __future__ import annotations

from typing import Sequence

from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.widgets import Static

from explorer.ui.colors import Scale

NEWLINE = "↵"


class PromptView(Static):
    """Renders display texts (engine.token_text) with one style per token.

    Without a colour layer, tokens alternate between two theme shades; with one, each token
    gets its scale colour and every other token is slightly darker, so equal neighbours
    still show where one ends.
    """

    def show(
        self,
        texts: Sequence[str],
        values: Sequence[float | None] | None = None,
        scale: Scale | None = None,
    ) -> None:
        self._texts, self._values, self._scale = list(texts), values, scale
        self.update(self._build())

    def _plain_styles(self) -> tuple[Style, Style]:
        variables = self.app.get_css_variables()
        first = Color.parse(variables.get("surface", "#1e1e1e"))
        second = Color.parse(variables.get("panel", "#2b2b2b"))
        if first == second:
            second = first.lighten(0.08)
        return Style(bgcolor=first.rich_color), Style(bgcolor=second.rich_color)

    def _build(self) -> Text:
        text = Text(no_wrap=False, overflow="fold")
        plain = self._plain_styles() if self._scale is None else None
        for i, token in enumerate(self._texts):
            if self._scale is None:
                style = plain[i % 2]
            else:
                value = self._values[i] if self._values is not None and i < len(self._values) else None
                style = self._scale.style(value, shade=0.15 if i % 2 else 0.0)
            # The visible ↵ stays in the token; the real line break keeps the prompt's shape.
            pieces = token.split(NEWLINE)
            for j, piece in enumerate(pieces):
                if j:
                    text.append(NEWLINE, style)
                    text.append("\n")
                if piece:
                    text.append(piece, style)
        return text
