"""The sampling side of the backend interface: what `space`, autoplay, forced text, chat
prompts and tracked tokens need beyond `Backend`. Importable without torch.

A backend that serves it says so with `capabilities.sampling` (and `tracked_tokens`);
`supports_sampling(backend)` is the one test the layers above use.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from explorer.backend.errors import BackendError
from explorer.backend.protocol import Backend
from explorer.backend.types import TrackedSeries
from explorer.sampling.settings import SamplingSettings


class ChatTemplateError(BackendError):
    """The model has no chat template, or its template failed to render these messages."""


@runtime_checkable
class SamplingBackend(Backend, Protocol):
    def next_logits(self, key: Hashable) -> np.ndarray:
        """float32 [V]: the model's raw logits after the last position of prompt `key`
        (fp32, after soft-capping). Kept from the step that computed them, so a sampler
        knob change needs no forward pass; at most one decode step when not kept."""

    def tracked(self, key: Hashable, token_ids: Sequence[int], *,
                cancelled: Callable[[], bool] | None = None) -> TrackedSeries:
        """p_base of each token after every position of prompt `key`, exact at any rank;
        with the logit lens also per layer after the last position. At most one chunked
        pass; none when only the last few positions changed since the last call."""

    def encode_plain(self, text: str) -> list[int]:
        """Text -> ids with no special tokens added (forced text, tracked text)."""

    def chat_ids(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """The model's chat template over `messages` ({"role", "content"}) with the
        generation prompt added. Raises ChatTemplateError (one sentence)."""

    def sampling_defaults(self) -> SamplingSettings:
        """The sampler settings from the model's generation_config.json
        (neutral when it has none)."""

    @property
    def eos_ids(self) -> frozenset[int]:
        """Token ids that end a generation (generation_config's, else the tokenizer's)."""


def supports_sampling(backend: object) -> bool:
    caps = getattr(backend, "capabilities", None)
    return bool(caps is not None and caps.sampling and isinstance(backend, SamplingBackend))
