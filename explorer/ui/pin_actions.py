"""The app's pin keys: `m` pins or unpins the token under the table cursor, `M` pins the
tokens of a text (or unpins them, when that text is pinned already), and a tracked row's ✕
unpins its token. A mixin of SamplerActions (the tracked panel draws in sampler_drawing).

The lane holds the pinned ids (Lane.tracked): the ids the "tracked" view is fetched for
are the ids the panel waits for, so the two can never disagree (they once did after a
model switch, and the panel said "computing" for good).
"""

from __future__ import annotations

from explorer.ui.text_input import TextPrompt
from explorer.ui.tracked_panel import TrackedPanel


class PinActions:
    """Uses the app's lane, engine, table, capabilities, notify and _after_lane."""

    @property
    def tracked_ids(self) -> list[int]:
        """The pinned token ids, in pin order. The lane holds them (one truth: the ids the
        tracked view is fetched for are the ids the panel waits for)."""
        return [] if self.lane is None else list(self.lane.tracked)

    def action_pin(self) -> None:
        if not self._tracking_available():
            return
        candidate = self.table.selected()
        if candidate is None:
            return
        pins = self.tracked_ids
        if candidate.token_id in pins:
            self.unpin(candidate.token_id)
        else:
            self._retrack(pins + [candidate.token_id])

    def unpin(self, token_id: int) -> None:
        """Stop tracking `token_id` (m on its row, M with its text, ✕ in the tracked panel)."""
        pins = self.tracked_ids
        if token_id in pins:
            pins.remove(token_id)
            self.notify(f"Unpinned {self.engine.token_text(token_id)!r}.", timeout=2)
            self._retrack(pins)

    def on_tracked_panel_unpin(self, message: TrackedPanel.Unpin) -> None:
        self.unpin(message.token_id)

    def action_pin_text(self) -> None:
        if self._tracking_available():
            self.push_screen(TextPrompt("pin tokens by text", "Type text; every token of it is tracked "
                                        "(a leading space is part of a token). Text already pinned "
                                        "is unpinned."), self._pin_text)

    def _pin_text(self, text: str | None) -> None:
        if text is None:
            return
        ids = self.engine.encode_plain(text)
        if not ids:
            self.notify(f"The text {text!r} gives no tokens; nothing was pinned.", severity="warning")
            return
        pins = self.tracked_ids
        if all(t in pins for t in ids):  # the same text again: M unpins what it pinned
            self._retrack([t for t in pins if t not in ids])
            self.notify(f"Unpinned {text!r}" + (f" ({len(ids)} tokens)." if len(ids) > 1 else "."),
                        timeout=3)
            return
        if len(ids) > 1:
            pieces = ", ".join(repr(self.engine.token_text(t)) for t in ids)
            self.notify(f"{text!r} is not one token in the vocabulary but {len(ids)} ({pieces}); "
                        "all of them are tracked.", severity="warning", timeout=6)
        self._retrack(pins + [t for t in dict.fromkeys(ids) if t not in pins])

    def _tracking_available(self) -> bool:
        missing = self.capabilities.missing("tracked")
        if missing is None:
            return True
        self.notify(missing, severity="warning", timeout=8)
        return False

    def _retrack(self, pins: list[int]) -> None:
        self.lane.track(tuple(pins))
        if self.samples_on_server and self.sampler is not None:  # the draw adds the pins' p_final
            self.lane.refetch("draw")
        self._after_lane()
