"""Integrated gradients' baseline b: the input the path b + alpha (e - b) starts from.

- zero: b = 0 (the issue's definition and captum's default). On RMSNorm models the path
  then passes through the region where every norm layer re-normalises a vanishing input,
  and f moves over tens of decades of alpha (ig_path.py).
- mean: b_i = the mean of the input-embedding rows over the whole vocabulary, at every
  position (what the embedding layer returns, so a model that scales its embeddings,
  as Gemma does, is averaged after the scale): "the average token".
- eos: b_i = the embedding of the end-of-sequence token at every position, as captum's
  TokenReferenceBase builds a reference from one token (PAD/UNK for BERT; a causal LM has
  no pad token of its own, so its EOS).
- mean-keep-first, eos-keep-first: the same, except that position 0 keeps its own
  embedding (b_0 = e_0, so its score is 0), as captum's BERT tutorial keeps [CLS] in the
  reference. A causal LM's first token is its attention sink: moving it along the path
  switches the sink on abruptly (on SmolLM2 f jumps by 5 within 1/800 of the path), which
  no quadrature at a few dozen points follows; with it kept, f is smooth.
The non-zero baselines keep the path's norm away from zero, so the norm layers stay
scale-free on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from explorer.backend.errors import Unavailable
from explorer.backend.types import ATTRIBUTION_BASELINES

CHUNK = 4096  # vocabulary rows embedded at a time for the mean
KEEP_FIRST = "-keep-first"


class Baselines:
    """Builds b for a prompt; the mean row is computed once per model."""

    def __init__(self, embed, device_of, eos_id: int | None):
        self._embed = embed
        self._device_of = device_of  # () -> the device the embedding layer takes ids on
        self.eos_id = eos_id
        self._mean: torch.Tensor | None = None

    def build(self, name: str, ids: Sequence[int], embeds: torch.Tensor) -> torch.Tensor:
        """b, fp32 with the shape of `embeds` ([1, n, d]). Raises ValueError for an unknown
        name, Unavailable when the model has no EOS token for "eos"."""
        if name not in ATTRIBUTION_BASELINES:
            raise ValueError(f"unknown attribution baseline {name!r}; use one of "
                             f"{', '.join(ATTRIBUTION_BASELINES)}")
        kind = name.removesuffix(KEEP_FIRST)
        if kind == "zero":
            b = torch.zeros_like(embeds)
        else:
            row = self.mean_row() if kind == "mean" else self._token_row(self.eos_id)
            b = row.to(embeds.device).expand_as(embeds).clone()
        if name.endswith(KEEP_FIRST):
            b[:, 0] = embeds[:, 0]
        return b

    def mean_row(self) -> torch.Tensor:
        """fp32 [d]: the mean of the embedding layer's output over every token id."""
        if self._mean is None:
            vocab = int(self._embed.weight.shape[0])
            device = self._device_of()
            total = None
            with torch.no_grad():
                for start in range(0, vocab, CHUNK):
                    ids = torch.arange(start, min(vocab, start + CHUNK), device=device)
                    part = self._embed(ids[None])[0].double().sum(dim=0)
                    total = part if total is None else total + part.to(total.device)
            self._mean = (total / vocab).float()
        return self._mean

    def _token_row(self, token: int | None) -> torch.Tensor:
        if token is None:
            raise Unavailable("This model names no end-of-sequence token, so the \"eos\" "
                              "baseline is unavailable; use \"zero\" or \"mean\".")
        with torch.no_grad():
            ids = torch.tensor([[int(token)]], dtype=torch.long, device=self._device_of())
            return self._embed(ids)[0, 0].detach().float()
