"""The app's pin keys: `m` pins or unpins the token under the table cursor, `M` pins the
tokens of a text (or unpins them, when that text is pinned already), and a tracked row's ✕
unpins its token. A mixin of SamplerActions; the pins are the explorer core's
(explorer.session.explorer, whose lane holds them: the ids the "tracked" view is fetched
for are the ids the panel waits for).
"""

from __future__ import annotations

from explorer.ui.text_input import TextPrompt
from explorer.ui.tracked_panel import TrackedPanel


class PinActions:
    """Uses the app's core, table, notify and _after_lane."""

    @property
    def tracked_ids(self) -> list[int]:
        """The pinned token ids, in pin order."""
        return [] if self.core is None else self.core.tracked_ids

    def action_pin(self) -> None:
        candidate = self.table.selected() if self._tracking_available() else None
        if candidate is not None:
            self.core.pin(candidate.token_id)
            self._after_lane()

    def unpin(self, token_id: int) -> None:
        """Stop tracking `token_id` (m on its row, M with its text, ✕ in the tracked panel)."""
        self.core.unpin(token_id)
        self._after_lane()

    def on_tracked_panel_unpin(self, message: TrackedPanel.Unpin) -> None:
        self.unpin(message.token_id)

    def action_pin_text(self) -> None:
        if self._tracking_available():
            self.push_screen(TextPrompt("pin tokens by text", "Type text; every token of it is tracked "
                                        "(a leading space is part of a token). Text already pinned "
                                        "is unpinned."), self._pin_text)

    def _pin_text(self, text: str | None) -> None:
        if text is not None:
            self.core.pin_text(text)
            self._after_lane()

    def _tracking_available(self) -> bool:
        missing = self.core.tracking_refusal()
        if missing is not None:
            self.notify(missing, severity="warning", timeout=8)
        return missing is None
