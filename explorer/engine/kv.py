"""Per-prompt KV caches: which tokens a cache holds, cropping, copying."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

# Full log-prob rows kept for the last positions of each cache. The next append needs the
# distribution that predicted the new token (its log-prob and rank); keeping a few rows
# means append after a pop (or several) still costs exactly one one-token decode step.
TAIL_ROWS = 8


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

    def copy(self, length: int | None = None) -> "PromptKV":
        """A copy holding the first `length` positions (all: None). Only those are
        copied: a branch at position k of a long prompt copies k positions, not n."""
        length = len(self.ids) if length is None else min(length, len(self.ids))
        drop = len(self.ids) - length
        with torch.inference_mode():
            cache = copy.copy(self.cache)
            cache.layers = [copy.copy(layer) for layer in self.cache.layers]
            for layer in cache.layers:
                if getattr(layer, "is_initialized", False) and layer.keys is not None:
                    end = layer.keys.shape[-2] - drop
                    layer.keys = layer.keys[..., :end, :].clone()
                    layer.values = layer.values[..., :end, :].clone()
        # Tail rows are never modified in place, so they can be shared.
        tails = self.tails[: max(0, len(self.tails) - drop)]
        return PromptKV(cache=cache, ids=self.ids[:length], tails=list(tails))
