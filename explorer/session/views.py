"""The names the lane fetches views and runs jobs under, typed: a View member for each
array a backend serves for the shown prompt, an AttributionView for one attribution (its
method, target token and baseline as fields, never packed into a string), and JobKind.
No Textual. View and JobKind are str enums, so a view read by its plain name
(`lane.views["tracked"]`) is the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class View(str, Enum):
    LOGITS = "logits"  # the kept raw row after the last position (p_final, sampling)
    DRAW = "draw"  # a server's own sampler's pick (explorer.backend.ServerDraw)
    TRACKED = "tracked"  # the pinned tokens through the prompt (TrackedSeries)
    INFLUENCE = "influence"
    PROMPT_LENS = "prompt_lens"
    CANDIDATE_LENS = "candidate_lens"
    PROMPT_VALUES = "prompt_values"  # a server without prompt log-probs, on demand

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class AttributionView:
    """One attribution of the shown prompt toward `target` (minutes of passes: it runs in
    the background, so presses and other views go first). `baseline` only for integrated
    gradients, the one method that has a baseline."""

    method: str
    target: int
    baseline: str | None = None
    # The first `position` tokens toward the token after them (the position cursor, issue
    # 23); None: the whole prompt toward the next token.
    position: int | None = None

    @classmethod
    def of(cls, method: str, target: int, baseline: str | None = None,
           position: int | None = None) -> AttributionView:
        return cls(method, int(target), baseline if baseline and method == "integrated_gradients" else None,
                   None if position is None else int(position))

    def __str__(self) -> str:
        return ":".join(["attribution", self.method, str(self.target)] + ([self.baseline] if self.baseline else [])
                        + ([f"@{self.position}"] if self.position is not None else []))


@dataclass(frozen=True)
class PositionRow:
    """The raw logits row before token `index` of the shown prompt (the position cursor's
    p_final): kept, or one decode step."""

    index: int

    def __str__(self) -> str:
        return f"position:{self.index}"


ViewName = View | AttributionView | PositionRow


def is_background(view: ViewName) -> bool:
    return isinstance(view, AttributionView)


class JobKind(str, Enum):
    SYNC = "sync"  # bring a prompt's backend state to its ids
    VIEWS = "views"  # fetch views for the shown prompt

    def __str__(self) -> str:
        return self.value
