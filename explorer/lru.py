"""One bounded least-recently-used map for every cache in the explorer. Torch-free, so
the engine, the remote backends and the session share it.

Each entry weighs `weigh(value)` (1 when no weigh is given: the bound is a count); a put
past the bound drops the least recently used entries until the total fits again. `get`
counts as a use, `peek` does not.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    def __init__(self, bound: int, *, weigh: Callable[[V], int] | None = None):
        # A count-bounded cache keeps at least the newest entry (a cache of size 0 would
        # drop what the step that filled it is about to read); a weight budget may be 0.
        self.bound = int(bound) if weigh is not None else max(1, int(bound))
        self._weigh = weigh
        self._items: OrderedDict[K, V] = OrderedDict()
        self.used = 0  # total weight of the entries held

    def _weight(self, value: V) -> int:
        return 1 if self._weigh is None else int(self._weigh(value))

    def get(self, key: K, default=None):
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        return default

    def peek(self, key: K, default=None):
        return self._items.get(key, default)

    def put(self, key: K, value: V) -> None:
        self.pop(key)
        self._items[key] = value
        self.used += self._weight(value)
        while self.used > self.bound and self._items:
            _, old = self._items.popitem(last=False)
            self.used -= self._weight(old)

    def replace(self, key: K, value: V) -> None:
        """A new value for a present key, keeping its place in the order (same weight)."""
        self._items[key] = value

    def pop(self, key: K, default=None):
        if key not in self._items:
            return default
        value = self._items.pop(key)
        self.used -= self._weight(value)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
        self.used = 0

    def keys(self) -> list[K]:
        """Least recently used first."""
        return list(self._items)

    def values(self) -> list[V]:
        """Least recently used first."""
        return list(self._items.values())

    def items(self) -> Iterator[tuple[K, V]]:
        """A snapshot, least recently used first: the caller may pop while iterating."""
        return iter(list(self._items.items()))
