"""Results of the views, keyed by token-id tuples: the influence and the lens point of the
position after those ids. A prompt's records live in the store; these are extras that an
eager step produces for free and a later pop or switch can reuse without model work."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from . import metrics
from .kv import LRU, PromptKV
from .lens import LensPoint, make_point, point_probs, target_probs
from .parts import ModelParts
from .runner import Runner

INFLUENCE_ENTRIES = 256
LENS_ENTRIES = 32

Ids = tuple[int, ...]


class ViewCache:
    def __init__(self, parts: ModelParts | None, influence_heads: int):
        self.parts = parts
        self.influence_heads = int(influence_heads)
        self._influence = LRU(INFLUENCE_ENTRIES)  # ids -> (np.ndarray, heads)
        self._lens = LRU(LENS_ENTRIES)  # ids -> LensPoint

    def clear(self) -> None:
        self._influence.clear()
        self._lens.clear()

    # ----------------------------------------------------------------- influence
    def store_influence(self, ids: Ids, rows: torch.Tensor | None) -> None:
        """rows: [layers, heads, keys], the last query position of every layer and head."""
        if rows is None:
            return
        values, heads = metrics.influence(rows, self.influence_heads)
        self._influence.put(ids, (values.cpu().numpy().astype(np.float32), tuple(heads)))

    def influence(self, ids: Ids) -> tuple[np.ndarray, tuple[tuple[int, int], ...]] | None:
        return self._influence.get(ids)

    # ----------------------------------------------------------------- lens
    def store_lens(self, ids: Ids, first: int, hidden_states, final_rows: list[torch.Tensor]) -> None:
        """A lens point for each position first.. of one step (the last one or two)."""
        n_layers = self.parts.n_layers
        q = len(ids) - first
        for j in range(q):
            pos = first + j
            layer_hidden = torch.stack([hidden_states[l][0, j] for l in range(n_layers)])
            final = final_rows[len(final_rows) - q + j]
            self._lens.put(ids[: pos + 1], make_point(self.parts, layer_hidden, final))

    def lens_point(self, ids: Ids) -> LensPoint | None:
        return self._lens.get(ids)

    def layer_probs(self, point: LensPoint, token_ids: Sequence[int]) -> np.ndarray:
        with torch.inference_mode():
            probs = point_probs(self.parts, point, [int(t) for t in token_ids])
        return probs.cpu().numpy().astype(np.float32)

    def cols_from_points(self, ids: Ids, start: int) -> tuple[np.ndarray | None, ...]:
        """Columns i >= start whose predicting position has a stored lens point."""
        cols = []
        for i in range(start, len(ids)):
            point = self._lens.peek(ids[:i]) if i > 0 else None
            cols.append(None if point is None else self.layer_probs(point, [ids[i]])[:-1, 0])
        return tuple(cols)

    def cols_by_prefill(self, runner: Runner, ids: Ids, missing: list[int]) -> dict[int, np.ndarray]:
        """One chunked pass over the prompt on a scratch cache, with hidden states only in
        the chunks holding a position that predicts a missing column."""
        from transformers import DynamicCache

        need = sorted(i - 1 for i in missing)  # predicting positions
        out_cols: dict[int, np.ndarray] = {}

        def lens_of_chunk(pos: int, out) -> None:
            rows = [p for p in need if pos <= p < pos + out.logits.shape[0]]
            if not rows:
                return
            local = torch.tensor([p - pos for p in rows], device=runner.device)
            targets = torch.tensor([ids[p + 1] for p in rows], device=runner.device)
            per_layer = [target_probs(self.parts, out.hidden_states[l][0, local], targets)
                         for l in range(self.parts.n_layers)]
            block = torch.stack(per_layer).cpu().numpy().astype(np.float32)  # [L, r]
            for j, p in enumerate(rows):
                out_cols[p + 1] = block[:, j].copy()

        with torch.inference_mode():
            runner.prefill(ids, PromptKV(cache=DynamicCache()), need[-1] + 1, lens_of_chunk,
                           hidden=lambda pos, end: any(pos <= p < end for p in need))
        return out_cols
