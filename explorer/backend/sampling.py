"""The sampling side of the backend interface: its error and what a backend's own
sampler reports. Importable without torch.

Two kinds of sampler sit behind Backend (explorer.backend.protocol):
- Feature.SAMPLING (capabilities.sampling): the backend keeps the raw logits row
  (next_logits) and the session's own sampler draws from it (the local engine);
- Feature.SERVER_SAMPLING (capabilities.server_sampling): the backend's own sampler draws
  (draw), given the settings (a server returns no logits row). It reports the chosen
  token and, when the server can say it, p_final of the tokens asked about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from explorer.backend.errors import BackendError
from explorer.sampling.settings import SamplingSettings


class ChatTemplateError(BackendError):
    """The model has no chat template, or its template failed to render these messages."""


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
