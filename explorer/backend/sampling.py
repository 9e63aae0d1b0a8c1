"""The sampling side of the backend interface: what `space`, autoplay, forced text, chat
prompts and tracked tokens need beyond `Backend`. Importable without torch.

Two kinds of sampler sit behind it:
- `SamplingBackend` (capabilities.sampling, `supports_sampling`): the backend keeps the
  raw logits row and the session's own sampler draws from it (the local engine);
- `ServerSampling` (capabilities.server_sampling, `samples_on_server`): the backend's own
  sampler draws, given the settings (a server returns no logits row). It reports the
  chosen token and, when the server can say it, p_final of the tokens asked about.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
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
                progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> TrackedSeries:
        """p_base of each token after every position of prompt `key`, exact at any rank;
        with the logit lens also per layer after the last position. At most one chunked
        pass; none when only the last few positions changed since the last call.
        progress(done, total) counts positions; cancelled is polled between chunks."""

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


@dataclass(frozen=True)
class ServerDraw:
    """What a backend's own sampler did after one prompt's last position."""

    settings: SamplingSettings  # the settings it drew with (seed included)
    prompt_len: int  # how many ids were the prompt's original ones (penalties count after)
    token_id: int  # the token it chose
    ends: bool  # the server says the token ends a generation (its end-of-sequence token)
    # p_final of the tokens asked about (and the chosen one), 0 for excluded ones; None
    # when the server does not report its processed distribution.
    p_final: Mapping[int, float] | None = None
    # Entropy of p_final in nats (None: unknown) and whether it is only a lower bound
    # (the server listed fewer tokens than p_final keeps). When it is exact, p_final lists
    # every token it keeps: a token missing from it has p_final 0.
    entropy_final: float | None = None
    entropy_final_bound: bool = True


@runtime_checkable
class ServerSampling(Backend, Protocol):
    def draw(self, key: Hashable, settings: SamplingSettings, prompt_len: int,
             candidates: Sequence[int] = ()) -> ServerDraw:
        """The token the backend's own sampler draws after prompt `key` (synced) with these
        settings; presence/frequency penalties count the ids after `prompt_len`. The token
        at position n uses a seed derived from (settings.seed, n): the same seed, prompt
        and settings give the same tokens. At most one request; none when the prompt's last
        request already drew with these settings (an append remembers them)."""

    def encode_plain(self, text: str) -> list[int]:
        """Text -> ids with no special tokens added (forced text)."""

    def chat_ids(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """The served model's chat template over `messages`, rendered by the server, with
        the generation prompt added. Raises ChatTemplateError (one sentence)."""

    def sampling_defaults(self) -> SamplingSettings:
        """Neutral settings (a server's generation config is not ours to read)."""

    @property
    def eos_ids(self) -> frozenset[int]:
        """End-of-sequence ids known so far (a server names them when it draws one)."""


def samples_on_server(backend: object) -> bool:
    caps = getattr(backend, "capabilities", None)
    return bool(caps is not None and caps.server_sampling and isinstance(backend, ServerSampling))


def chat_renderer(backend: object) -> Callable[[Sequence[Mapping[str, str]]], list[int]] | None:
    """The backend's `chat_ids` (a local tokenizer's template or a server's), or None when
    it cannot render chat prompts."""
    return backend.chat_ids if supports_sampling(backend) or samples_on_server(backend) else None
