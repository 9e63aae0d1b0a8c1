"""Shared prefixes of token-id sequences: every cache (the engine's KV caches and records,
the remote backends' prompts, the tracked-token columns) reuses what a prompt sharing the
longest prefix already holds. Torch-free."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading ids two sequences share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def longest_shared(candidates: Iterable[tuple[T, Sequence[int]]], ids: Sequence[int],
                   best: T | None = None, best_len: int = 0) -> tuple[T | None, int]:
    """The candidate (value, its ids) sharing the longest prefix with `ids`, and that
    length; `best`/`best_len` is the one to beat (ties keep it)."""
    for value, other in candidates:
        n = common_prefix(other, ids)
        if n > best_len:
            best, best_len = value, n
    return best, best_len
