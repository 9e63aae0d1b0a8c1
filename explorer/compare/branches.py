"""Two prompts of the book side by side (compare_branches): where they split, each side's
total log-prob and mean surprisal after the split, and every position's entropy, so one can
see which path the model preferred and where it became sure. Plain values from the
backend's records (the same numbers the prompt panel colours by); no new model work beyond
loading a prompt that is not loaded yet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from explorer.prefix import common_prefix


@dataclass(frozen=True, slots=True)
class BranchSide:
    key: object  # the prompt's key in the book
    ids: tuple[int, ...]
    texts: tuple[str, ...]  # display text per token
    logprobs: tuple[float | None, ...]  # ln p of each token given the ones before (None: first)
    entropies: tuple[float | None, ...]  # H (nats) of the distribution that predicted it
    entropy_bound: bool  # entropies are lower bounds (a server's top-K)
    split: int  # first position after the shared prefix

    @property
    def after(self) -> int:
        """How many tokens follow the split."""
        return len(self.ids) - self.split

    @property
    def total_logprob(self) -> float:
        """sum of ln p over the tokens after the split (0 when there are none)."""
        return float(sum(lp for lp in self.logprobs[self.split:] if lp is not None))

    @property
    def mean_surprisal(self) -> float | None:
        """-(total log-prob) / tokens after the split, in nats per token; None when none."""
        scored = [lp for lp in self.logprobs[self.split:] if lp is not None]
        return -sum(scored) / len(scored) if scored else None

    @property
    def surest(self) -> int | None:
        """The position after the split with the lowest entropy (where it became sure)."""
        known = [(h, i) for i, h in enumerate(self.entropies) if i >= self.split and h is not None]
        return min(known)[1] if known else None


@dataclass(frozen=True, slots=True)
class BranchComparison:
    split: int  # tokens both prompts share
    a: BranchSide  # the current prompt
    b: BranchSide  # the other one

    @property
    def preferred(self) -> str | None:
        """"a" or "b": the side whose tokens after the split the model found likelier per
        token (lower mean surprisal); None when either side has nothing after the split."""
        sa, sb = self.a.mean_surprisal, self.b.mean_surprisal
        if sa is None or sb is None or math.isclose(sa, sb):
            return None
        return "a" if sa < sb else "b"


def side(key, ids: Sequence[int], records, split: int) -> BranchSide:
    return BranchSide(key, tuple(ids), tuple(r.text for r in records),
                      tuple(r.logprob for r in records), tuple(r.entropy for r in records),
                      any(r.entropy_bound for r in records), split)


def compare_branches(records_of: Callable[[object, tuple[int, ...]], Sequence], a, b) -> BranchComparison:
    """Prompts a and b (book Prompts: .key, .ids); records_of(key, ids) gives a prompt's
    records with every position's numbers (the backend's prompt_values after a sync)."""
    split = common_prefix(a.ids, b.ids)
    return BranchComparison(split, side(a.key, a.ids, records_of(a.key, a.ids), split),
                            side(b.key, b.ids, records_of(b.key, b.ids), split))


def default_other(book, current=None):
    """The prompt to compare the current one with: its parent fork (a Prompt's `parent`
    key where the book records one), else the prompt sharing the longest prefix with it
    (a fork starts as its parent's copy), the earlier one on a tie. None: only one prompt."""
    current = current or book.current
    others = [p for p in book if p.key != current.key]
    parent = getattr(current, "parent", None)
    for p in others:
        if parent is not None and p.key == parent:
            return p
    if not others:
        return None
    order = {p.key: i for i, p in enumerate(book)}
    return max(others, key=lambda p: (common_prefix(p.ids, current.ids), -order[p.key]))


def backend_records(backend, *, cancelled=None) -> Callable[[object, tuple[int, ...]], Sequence]:
    """records_of for compare_branches: sync the prompt (a no-op when it is loaded) and
    read every position's numbers (prompt_values: one request per position on llama.cpp)."""
    def records_of(key, ids):
        backend.sync(key, ids, cancelled=cancelled)
        return backend.prompt_values(key, cancelled=cancelled)
    return records_of
