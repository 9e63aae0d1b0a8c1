"""Results of the views, keyed by token-id tuples: the influence and the lens point of the
position after those ids. A prompt's records live in the store; these are extras that an
eager step produces for free and a later pop or switch can reuse without model work."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from explorer.lru import LRU

from . import metrics
from .kv import PromptKV
from .lens import LensPoint, make_point, point_probs, stack_layers, target_probs
from .parts import ModelParts
from .runner import Runner
from .store import Prompt

INFLUENCE_ENTRIES = 256
LENS_ENTRIES = 32

Ids = tuple[int, ...]


class ViewCache:
    def __init__(self, parts: ModelParts | None, influence_heads: int):
        self.parts = parts
        self.influence_heads = int(influence_heads)
        self._influence = LRU(INFLUENCE_ENTRIES)  # ids -> (np.ndarray, heads)
        self._lens = LRU(LENS_ENTRIES)  # ids -> LensPoint, or (layer hidden, final row) until asked

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
    def store_lens(self, ids: Ids, count: int, hidden_states, final_rows: list[torch.Tensor]) -> None:
        """Keep what the lens points of the last `count` positions of a forward need: the
        [L, H] residual stream and the model's own log-prob row. Reading them through the
        final norm and lm_head ([L, V] of work) waits until a layer view or a tracked token
        asks, so --layer_prob costs nothing until it is used."""
        n_layers = self.parts.n_layers
        for j in range(count):
            back = count - j  # 1 = the last position
            layer_hidden = stack_layers(hidden_states, -back, n_layers)
            self._lens.put(ids[: len(ids) - back + 1], (layer_hidden, final_rows[-back]))

    def lens_point(self, ids: Ids, *, use: bool = True) -> LensPoint | None:
        """The lens point after `ids` (made now from the kept hidden states if need be);
        use=False leaves the LRU order alone."""
        entry = self._lens.get(ids) if use else self._lens.peek(ids)
        if entry is None or isinstance(entry, LensPoint):
            return entry
        with torch.inference_mode():
            point = make_point(self.parts, *entry)
        if ids in self._lens:
            self._lens.replace(ids, point)
        return point

    def layer_probs(self, point: LensPoint, token_ids: Sequence[int]) -> np.ndarray:
        with torch.inference_mode():
            probs = point_probs(self.parts, point, [int(t) for t in token_ids])
        return probs.cpu().numpy().astype(np.float32)

    def fill_lens_cols(self, runner: Runner, prompt: Prompt) -> Prompt:
        """The prompt with every lens column known: from kept points where the predicting
        position has one, the rest from one lens prefill. The same prompt if none lacked."""
        ids, cols = prompt.ids, list(prompt.lens_cols)
        missing = [i for i in range(1, len(ids)) if cols[i] is None]
        if not missing:
            return prompt
        found = self.cols_from_points(ids, missing)
        rest = [i for i in missing if i not in found]
        if rest:
            found |= self.cols_by_prefill(runner, ids, rest)
        for i, col in found.items():
            cols[i] = col
        return Prompt(ids, prompt.records, tuple(cols))

    def prompt_layer_probs(self, prompt: Prompt) -> np.ndarray:
        """float32 [L+1, n] from a prompt whose lens columns are all known; row L is the
        model's own p of each token (its record), column 0 is NaN (nothing predicts it)."""
        ids = prompt.ids
        out = np.full((self.parts.n_layers + 1, len(ids)), np.nan, dtype=np.float32)
        for i in range(1, len(ids)):
            out[:-1, i] = prompt.lens_cols[i]
            out[-1, i] = math.exp(prompt.records[i].logprob)
        return out

    def cols_from_points(self, ids: Ids, columns: Sequence[int]) -> dict[int, np.ndarray]:
        """Those of the given columns (i >= 1) whose predicting position has a kept point."""
        cols = {}
        for i in columns:
            point = self.lens_point(ids[:i], use=False)
            if point is not None:
                cols[i] = self.layer_probs(point, [ids[i]])[:-1, 0]
        return cols

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
            hidden = out.hidden_states  # a split model leaves each layer's where it ran
            per_layer = [target_probs(self.parts, hidden[l][0, local.to(hidden[l].device)], targets)
                         for l in range(self.parts.n_layers)]
            block = torch.stack(per_layer).cpu().numpy().astype(np.float32)  # [L, r]
            for j, p in enumerate(rows):
                out_cols[p + 1] = block[:, j].copy()

        with torch.inference_mode():
            runner.prefill(ids, PromptKV(cache=DynamicCache()), need[-1] + 1, lens_of_chunk,
                           hidden=lambda pos, end: any(pos <= p < end for p in need))
        return out_cols
