"""What the engine knows about each prompt: its records (immutable, shareable) and its KV
cache (bounded LRU). A new or rewritten prompt starts from whatever known state shares the
longest prefix with it, so a fork or an edit re-runs only the tokens that differ."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from explorer.backend.types import TokenRecord
from explorer.lru import LRU
from explorer.prefix import common_prefix, longest_shared

from .kv import PromptKV


@dataclass(frozen=True)
class Prompt:
    ids: tuple[int, ...]
    records: tuple[TokenRecord, ...]
    # Per position i: lens column p^l_{i-1}[t_i] for l < L (None until computed).
    lens_cols: tuple[np.ndarray | None, ...]

    def prefix(self, n: int) -> "Prompt":
        return Prompt(self.ids[:n], self.records[:n], self.lens_cols[:n])


EMPTY = Prompt((), (), ())


class PromptStore:
    def __init__(self, cache_size: int):
        self._prompts: dict[Hashable, Prompt] = {}
        # What a cancelled sync finished (its chunks' records), apart from the prompt
        # itself, which stays as it was; the next sync of that key resumes from it.
        self._partial: dict[Hashable, Prompt] = {}
        self._kv = LRU(cache_size)

    def get(self, key: Hashable) -> Prompt | None:
        return self._prompts.get(key)

    def __getitem__(self, key: Hashable) -> Prompt:
        return self._prompts[key]

    def put(self, key: Hashable, prompt: Prompt) -> None:
        self._prompts[key] = prompt
        self._partial.pop(key, None)

    def put_partial(self, key: Hashable, done: Prompt) -> None:
        self._partial[key] = done

    def forget(self, key: Hashable) -> None:
        self._prompts.pop(key, None)
        self._partial.pop(key, None)
        self._kv.pop(key, None)

    def clear(self) -> None:
        self._prompts.clear()
        self._partial.clear()
        self._kv.clear()

    def touch(self, key: Hashable) -> None:
        """Switching to a prompt counts as a use of its cache."""
        self._kv.get(key)

    def base_for(self, key: Hashable, ids: tuple[int, ...]) -> Prompt:
        """The records to start from: this key's prompt or what its cancelled sync
        finished, whichever shares more of `ids`; for a new key, the records of the known
        prompt sharing most of its prefix (a fork shares its parent's records: they are
        immutable)."""
        own = [p for p in (self._prompts.get(key), self._partial.get(key)) if p is not None]
        best, n = longest_shared(((p, p.ids) for p in own or self._prompts.values()), ids)
        return EMPTY if best is None else best.prefix(n)

    def crop_kv(self, key: Hashable, ids: tuple[int, ...]) -> None:
        """A pop: crop this key's cache (if any) to what it shares with `ids`."""
        kv = self._kv.get(key)
        if kv is not None:
            kv.crop_to(common_prefix(kv.ids, ids))

    def kv_for(self, key: Hashable, prefix: tuple[int, ...]) -> PromptKV:
        """This key's cache cropped to the longest usable part of `prefix`; else a copy of
        another prompt's cache sharing the longest prefix; else an empty cache."""
        from transformers import DynamicCache

        own = self._kv.get(key)
        start = common_prefix(own.ids, prefix) if own is not None else 0
        best, best_len = longest_shared(((kv, kv.ids) for _, kv in self._kv.items()), prefix,
                                        own, start)
        if best is None or best_len == 0:
            # No config: plain full-attention layers on every model, so any cache can be
            # cropped (sliding-window layers cannot roll back once the window is full).
            kv = PromptKV(cache=DynamicCache())
        elif best is own:
            kv = own
        else:
            kv = best.copy(best_len)
        kv.crop_to(best_len)
        self._kv.put(key, kv)
        return kv

    def peek_kv(self, key: Hashable) -> PromptKV | None:
        """This key's cache, if held, without counting a use (a tree only reads it)."""
        return self._kv.peek(key)

    def drop_kv(self, kv: PromptKV) -> None:
        """Forget a cache a failed forward may have left half-updated."""
        for k, v in self._kv.items():
            if v is kv:
                self._kv.pop(k)
