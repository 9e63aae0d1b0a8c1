"""A model comparison that follows a prompt as it changes (the app's compare view).

The first time a prompt is shown: compare_models (both chunked passes), then model B loads
the prompt into its own cache. After that, an appended token costs B one decode step and
one row of arithmetic: the new position's numbers come from the kept distributions after
the old last position, the new next-token row from each side's last row (a local side's
kept logits row, a server's top-K). A pop is a crop on B and no model work on A. Anything
else (a reset, forced text of several tokens) compares the whole prompt again.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from explorer.backend import Feature
from explorer.compare.kl import kl_bound, known_from_row, kl_rows
from explorer.compare.models import ModelComparison, PositionDiff, compare_models
from explorer.lru import LRU
from explorer.prefix import common_prefix

KEPT = 4  # comparisons kept, one per prompt key


def _log_softmax(row: np.ndarray) -> np.ndarray:
    row = row.astype(np.float32)
    top = row.max()
    return (row - (top + np.log(np.exp((row - top).astype(np.float64)).sum()))).astype(np.float32)


class LiveComparison:
    """Backends a and b (vocabulary_mismatch checked by the caller). Not thread-safe: one
    job at a time (the app's lane runs one)."""

    def __init__(self, a, b) -> None:
        self.a, self.b = a, b
        self._kept = LRU(KEPT)

    def update(self, key, ids, *, progress=None, cancelled=None) -> ModelComparison:
        ids = tuple(int(i) for i in ids)
        old = self._kept.get(key)
        keep = 0 if old is None else common_prefix(old.ids, ids)
        if old is not None and keep == len(old.ids) == len(ids) - 1:
            new = self._append(key, old, ids)
        elif old is not None and keep == len(ids) and keep < len(old.ids):
            new = self._crop(key, old, ids)
        elif old is not None and keep == len(ids):
            new = old
        else:
            new = compare_models(self.a, self.b, ids, progress=progress, cancelled=cancelled)
            self.b.sync(key, ids, cancelled=cancelled)  # B's cache, for the appends to come
        self._kept.put(key, new)
        return new

    def forget(self, key) -> None:
        self._kept.pop(key, None)
        self.b.forget(key)

    # -- one row at a time ---------------------------------------------------------------
    def _last_row(self, backend, key, ids):
        """After the last position: a local side's full log-prob row, a server's top-K."""
        records = backend.sync(key, ids)
        if not backend.capabilities.missing(Feature.SAMPLING):
            return _log_softmax(backend.next_logits(key)), records
        return {c.token_id: c.logprob for c in records[-1].top}, records

    def _next_numbers(self, row_a, row_b) -> tuple[float, int, int]:
        top = [int(np.argmax(r)) if isinstance(r, np.ndarray) else max(r, key=r.get) for r in (row_a, row_b)]
        if isinstance(row_a, np.ndarray) and isinstance(row_b, np.ndarray):
            return float(kl_rows(row_a[None], row_b[None])[0]), top[0], top[1]
        known_a = row_a if isinstance(row_a, dict) else known_from_row(row_a, row_b)
        known_b = row_b if isinstance(row_b, dict) else known_from_row(row_b, row_a)
        return kl_bound(known_a, known_b), top[0], top[1]

    def _refresh_next(self, cmp: ModelComparison, key, ids) -> tuple[ModelComparison, list]:
        row_a, rec_a = self._last_row(self.a, key, ids)
        row_b, rec_b = self._last_row(self.b, key, ids)
        kl, ta, tb = self._next_numbers(row_a, row_b)
        return replace(cmp, ids=ids, next_kl=kl, next_top1=(ta, tb), next_a=row_a, next_b=row_b), [rec_a, rec_b]

    def _append(self, key, old: ModelComparison, ids) -> ModelComparison:
        t = ids[-1]
        new, (rec_a, rec_b) = self._refresh_next(old, key, ids)
        lp_a = _logprob(old.next_a, rec_a, t)
        lp_b = _logprob(old.next_b, rec_b, t)
        line = PositionDiff(len(ids) - 1, t, self.a.decode([t]), lp_a, lp_b, old.next_kl, *old.next_top1)
        return replace(new, positions=old.positions + [line])

    def _crop(self, key, old: ModelComparison, ids) -> ModelComparison:
        new, _ = self._refresh_next(old, key, ids)
        return replace(new, positions=old.positions[: len(ids)])


def _logprob(row, records, token: int) -> float | None:
    """ln p of `token` from the row before it: a full row, else the server's record of it
    (its exact prompt log-prob, at any rank)."""
    if isinstance(row, np.ndarray):
        return float(row[token])
    lp = records[-1].logprob
    return None if lp is None or not math.isfinite(lp) else float(lp)
