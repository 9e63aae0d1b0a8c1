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

    @classmethod
    def of(cls, method: str, target: int, baseline: str | None = None) -> AttributionView:
        return cls(method, int(target), baseline if baseline and method == "integrated_gradients" else None)

    def __str__(self) -> str:
        return ":".join(["attribution", self.method, str(self.target)] + ([self.baseline] if self.baseline else []))


ViewName = View | AttributionView


def is_background(view: ViewName) -> bool:
    return isinstance(view, AttributionView)


class JobKind(str, Enum):
    SYNC = "sync"  # bring a prompt's backend state to its ids
    VIEWS = "views"  # fetch views for the shown prompt

    def __str__(self) -> str:
        return self.value
