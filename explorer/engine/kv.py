"""Per-prompt KV caches: which tokens a cache holds, cropping, copying, and a bounded LRU."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field

import torch

# Full log-prob rows kept for the last positions of each cache. The next append needs the
# distribution that predicted the new token (its log-prob and rank); keeping a few rows
# means append after a pop (or several) still costs exactly one one-token decode step.
TAIL_ROWS = 8


def common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


@dataclass
class PromptKV:
    """A DynamicCache holding exactly `ids`, plus log-probs of its last positions."""

    cache: object  # transformers DynamicCache
    ids: tuple[int, ...] = ()
    tails: list[torch.Tensor] = field(default_factory=list)  # tails[-1] = p after ids[-1]

    def crop_to(self, length: int) -> None:
        """Keep the first `length` positions; no forward pass."""
        drop = len(self.ids) - length
        if drop <= 0:
            return
        # transformers 5: crop takes minus the number of positions to remove.
        self.cache.crop(-drop)
        self.ids = self.ids[:length]
        self.tails = self.tails[: max(0, len(self.tails) - drop)]

    def keep_tails(self, rows: list[torch.Tensor]) -> None:
        self.tails = (self.tails + rows)[-TAIL_ROWS:]

    def copy(self) -> "PromptKV":
        with torch.inference_mode():
            cache = copy.deepcopy(self.cache)
        # Tail rows are never modified in place, so they can be shared.
        return PromptKV(cache=cache, ids=self.ids, tails=list(self.tails))


class LRU:
    """A small least-recently-used map; `get` counts as a use."""

    def __init__(self, maxsize: int):
        self.maxsize = max(1, int(maxsize))
        self._items: OrderedDict = OrderedDict()

    def get(self, key: Hashable, default=None):
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        return default

    def peek(self, key: Hashable, default=None):
        return self._items.get(key, default)

    def put(self, key: Hashable, value) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def replace(self, key: Hashable, value) -> None:
        """A new value for a present key, keeping its place in the order."""
        self._items[key] = value

    def pop(self, key: Hashable, default=None):
        return self._items.pop(key, default)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()

    def items(self) -> Iterator:
        return iter(list(self._items.items()))
