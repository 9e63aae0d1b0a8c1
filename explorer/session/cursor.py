"""The position cursor (issue 23): look back at any earlier token of the current prompt,
see the distribution the model had before it, branch there, attribute it. No Textual.

The Explorer owns one (`explorer.cursor`); the app's keys ([, ], shift+arrows, a click,
→ at a position), the Python API and tests call these verbs. Moving the cursor is no
model work: the table comes from the shown records (explorer.session.positions); only
p_final wants the raw row before the token (the PositionRow view: kept, or one decode
step), and a branch is an ordinary book press the lane runs (one decode step on the
parent's cache, cropped).
"""

from __future__ import annotations

from explorer.session.positions import PositionTable, position_table
from explorer.session.views import AttributionView, PositionRow


class PositionCursor:
    def __init__(self, explorer) -> None:
        self._explorer = explorer
        self._cursor: tuple[int, int] | None = None  # (prompt key, token index)

    @property
    def index(self) -> int | None:
        """The 0-based index of the token the cursor is on, or None at the live end (also
        once the prompt changed under it: another prompt, or popped past it)."""
        if self._cursor is None or self._explorer.lane is None:
            return None
        key, index = self._cursor
        current = self._explorer.lane.book.current
        return index if current.key == key and 1 <= index < len(current.ids) else None

    def move(self, delta: int) -> None:
        """[ and ] (delta -1 / +1): one token back or forward; forward past the last token
        is the live end again. The first token has no distribution before it, so the
        cursor stops at the second."""
        n = len(self._explorer.lane.book.current.ids)
        here = self.index
        self.put((n if here is None else here) + delta)

    def put(self, index: int | None) -> None:
        """Put the cursor on token `index` (a click); None or past the end: the live end."""
        ids = self._explorer.lane.book.current.ids
        if index is None or index >= len(ids) or len(ids) < 2:
            self._cursor = None
        else:
            self._cursor = (self._explorer.lane.book.current.key, max(1, int(index)))

    def views(self) -> set:
        """The views the screen wants for the cursor: the raw row before its token when
        the session's sampler draws from raw rows (p_final there)."""
        index = self.index
        if index is None or not self._explorer.backend.capabilities.sampling:
            return set()
        return {PositionRow(index)}

    def table(self) -> PositionTable | None:
        """The table before the cursor's token, from what the screen shows (None at the
        live end, or while the screen catches up with the book)."""
        index, lane = self.index, self._explorer.lane
        if index is None or not lane.in_sync or index >= len(lane.records):
            return None
        prompt, ids = self._explorer.shown_prompt()
        prompt_len = len(prompt.original) if prompt is not None else len(ids)
        return position_table(lane.records, index, row=lane.views.get(PositionRow(index)),
                              sampler=self._explorer.sampler, ids=ids, prompt_len=prompt_len)

    def branch(self, row: int = 0) -> bool:
        """→ at the cursor: a new prompt of the tokens before it plus the table's candidate
        at `row`, made current, the cursor at its end (one decode step on the parent's
        cache, cropped). False (nothing pressed) at the live end."""
        index = self.index
        if index is None:
            return False
        self._cursor = None
        self._explorer.lane.press("branch", row=row, arg=index)
        return True

    def attribution_at(self, method: str, baseline: str | None = None,
                       candidate: int | None = None) -> AttributionView:
        """The attribution view for the cursor's token (or `candidate`, the table row under
        the table cursor) after the tokens before it; at the live end, of `candidate`
        after the whole prompt."""
        index = self.index
        if index is None:
            return AttributionView.of(method, int(candidate), baseline)
        target = self._explorer.lane.book.current.ids[index] if candidate is None else candidate
        return AttributionView.of(method, target, baseline, position=index)
