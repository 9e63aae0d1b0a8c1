"""The backend interface: the only thing the UI, the session and the headless commands
know about model work. The local transformers engine is one implementation; remote
OpenAI-compatible servers are another. Importable without torch.

A key names one prompt's state (its KV cache and records) inside the backend; ids are
always token ids, never re-tokenised text.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from explorer.backend.types import Attribution, ModelInfo, TokenRecord

Progress = Callable[[int, int], None]  # (done, total)
IsCancelled = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can serve. A view whose flag is False says so on screen."""

    exact_entropy: bool = True  # entropy over the full vocabulary (else a bound from top-K)
    influence: bool = True  # attention influence of prompt positions
    lens: bool = False  # logit-lens layer probabilities (local engine with --layer_prob)
    # Per-position log-prob and rank of the prompt's tokens come with sync(). When False
    # (llama.cpp), records hold only the last position's numbers, and the backend offers
    # prompt_values(key, *, progress, cancelled) -> records with every position filled in,
    # fetched only when a view asks (one request per position, cancellable, cached).
    prompt_logprobs: bool = True
    tracked_tokens: bool = False  # p of chosen tokens at every position, at any rank
    sampling: bool = False  # can sample a next token with sampler settings
    # The backend's own sampler draws the token (a server: no logits row comes back);
    # explorer.backend.sampling.ServerSampling. Exclusive with `sampling`.
    server_sampling: bool = False
    attribution: bool = False  # gradient attribution of prompt positions (local engine)
    trees: bool = False  # can grow token trees (grow_tree)
    max_top_k: int | None = None  # largest top-k the backend returns (None: any)
    kind: str = "local"  # shown in the header: "local", "vLLM", "llama.cpp", ...
    # (view, sentence): why a view is missing, where the backend can say more than
    # "not available" (e.g. which server feature it would need).
    reasons: tuple[tuple[str, str], ...] = ()

    def missing(self, view: str) -> str | None:
        """One sentence when `view` ("influence", "lens", "attribution", "trees",
        "tracked") is not served."""
        labels = {"influence": ("Attention influence", self.influence),
                  "lens": ("The logit lens", self.lens),
                  "attribution": ("Attribution", self.attribution),
                  "trees": ("Growing token trees", self.trees),
                  "tracked": ("Tracked tokens", self.tracked_tokens)}
        label, ok = labels.get(view, (view, True))
        if ok:
            return None
        return dict(self.reasons).get(view) or f"{label} is not available on this backend ({self.kind})."


@runtime_checkable
class Backend(Protocol):
    """Model work behind one interface. Every result is plain Python / numpy."""

    @property
    def info(self) -> ModelInfo: ...

    @property
    def capabilities(self) -> Capabilities: ...

    # -- text --------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Prompt text -> ids; BOS exactly when the tokenizer adds it by default."""

    def decode(self, ids: Sequence[int]) -> str: ...

    def token_text(self, token_id: int) -> str:
        """Display text of one token: whitespace and special tokens visible."""

    @property
    def special_ids(self) -> frozenset[int]:
        """Ids of the tokenizer's special tokens (BOS, EOS, chat markers...)."""

    def token_bytes(self, token_id: int) -> bytes | None:
        """The raw UTF-8 bytes one token stands for (several byte tokens may form one
        character); None for special tokens or when unknown."""

    # -- prompts -----------------------------------------------------------------------
    def sync(self, key: Hashable, ids: Sequence[int], *, progress: Progress | None = None,
             cancelled: IsCancelled | None = None) -> tuple[TokenRecord, ...]:
        """Bring prompt `key` to `ids` (one forward pass per new token) and return a record
        per position. Raises Cancelled when cancelled() turns true; nothing changes then."""

    def records(self, key: Hashable) -> tuple[TokenRecord, ...]: ...

    def forget(self, key: Hashable) -> None: ...

    # -- views (raise Unavailable when the capability is missing) ------------------------
    def influence(self, key: Hashable) -> np.ndarray:
        """float32 [n] in [0, 1]: attention influence of each position on the next token."""

    def layer_probs(self, key: Hashable, token_ids: Sequence[int]) -> np.ndarray:
        """float32 [L+1, k]: logit-lens p^l[t] after the last position, per given token."""

    def prompt_layer_probs(self, key: Hashable) -> np.ndarray:
        """float32 [L+1, n]: column i = p^l_{i-1}[t_i]; column 0 is NaN."""

    def attribution(self, key: Hashable, target: int, method: str = "saliency", *,
                    n_steps: int | None = None, progress: Progress | None = None,
                    cancelled: IsCancelled | None = None,
                    baseline: str | None = None) -> Attribution:
        """Scores per position of prompt `key` for log p_base(target) after its last
        position; method in types.ATTRIBUTION_METHODS; n_steps and baseline (a name in
        types.ATTRIBUTION_BASELINES) None = the configured ones ([attribution] n_steps,
        baseline). Raises Unavailable or Cancelled."""

    def grow_tree(self, key: Hashable, settings, *, progress: Progress | None = None,
                  cancelled: IsCancelled | None = None):
        """An explorer.tree.TokenTree of the likely continuations of prompt `key` (synced
        first); settings: explorer.tree.TreeSettings. Cancelling returns the part grown.
        Raises Unavailable without Capabilities.trees."""

    def close(self) -> None:
        """Release what the backend holds (connections, caches)."""
