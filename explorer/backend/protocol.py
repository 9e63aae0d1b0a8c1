"""The backend interface: the only thing the UI, the session and the headless commands
know about model work. The local transformers engine is one implementation; remote
OpenAI-compatible servers are another. Importable without torch.

A key names one prompt's state (its KV cache and records) inside the backend; ids are
always token ids, never re-tokenised text.

`Backend` declares every method the layers above call. The optional ones belong to a
`Feature`; `Capabilities` says which features a backend serves, and is the one place that
says so: callers read `capabilities.missing(Feature.X)` (one sentence, or None) or call
`capabilities.require(Feature.X)`, never probe for methods. A backend that does not serve
a feature still has its methods (explorer.backend.defaults.Defaults): they raise
Unavailable with that same sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from explorer.backend.errors import Unavailable
from explorer.backend.types import Attribution, ModelInfo, TokenRecord, TrackedSeries

if TYPE_CHECKING:
    from explorer.backend.sampling import ServerDraw
    from explorer.sampling.constraint import Constraint, ConstraintSpec
    from explorer.sampling.settings import SamplingSettings

Progress = Callable[[int, int], None]  # (done, total)
IsCancelled = Callable[[], bool]


class Feature(StrEnum):
    """An optional part of the interface, and the Backend methods that serve it."""

    INFLUENCE = "influence"  # influence()
    LENS = "lens"  # layer_probs(), prompt_layer_probs()
    ATTRIBUTION = "attribution"  # attribution()
    TREES = "trees"  # grow_tree()
    TRACKED = "tracked"  # tracked()
    SAMPLING = "sampling"  # next_logits(), logits_before(): the session's sampler's raw rows
    SERVER_SAMPLING = "server_sampling"  # draw(): the backend's own sampler draws
    CHAT = "chat"  # chat_ids(): the model's chat template (a tokenizer's or a server's)
    CONSTRAINTS = "constraints"  # constraint(): compiled for the tokenizer, masks the row
    # constrained_completion(), load_whole(): a server's structured outputs (vLLM)
    SERVER_CONSTRAINTS = "server_constraints"
    ROWS = "rows"  # logprob_blocks(): every position's full distribution (compare)


# Feature -> (the Capabilities field that serves it, the label of its sentence).
_FLAGS: dict[Feature, tuple[str, str]] = {
    Feature.INFLUENCE: ("influence", "Attention influence"),
    Feature.LENS: ("lens", "The logit lens"),
    Feature.ATTRIBUTION: ("attribution", "Attribution"),
    Feature.TREES: ("trees", "Growing token trees"),
    Feature.TRACKED: ("tracked_tokens", "Tracked tokens"),
    Feature.SAMPLING: ("sampling", "Sampling from the model's logits"),
    Feature.SERVER_SAMPLING: ("server_sampling", "The backend's own sampler"),
    Feature.CHAT: ("chat", "The chat template"),
    Feature.ROWS: ("full_rows", "Full distributions at every position"),
}


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can serve. A view whose flag is False says so on screen."""

    exact_entropy: bool = True  # entropy over the full vocabulary (else a bound from top-K)
    influence: bool = True  # attention influence of prompt positions
    lens: bool = False  # logit-lens layer probabilities (local engine with --layer_prob)
    # Per-position log-prob and rank of the prompt's tokens come with sync(). When False
    # (llama.cpp), records hold only the last position's numbers, and prompt_values()
    # fills in every position, fetched only when a view asks (one request per position,
    # cancellable, cached); elsewhere prompt_values() is records().
    prompt_logprobs: bool = True
    tracked_tokens: bool = False  # p of chosen tokens at every position, at any rank
    sampling: bool = False  # can sample a next token with sampler settings
    # The backend's own sampler draws the token (a server: no logits row comes back);
    # draw() -> explorer.backend.sampling.ServerDraw. Exclusive with `sampling`.
    server_sampling: bool = False
    chat: bool = False  # can render chat prompts (chat_ids)
    constraints: bool = False  # compiles constraints for its tokenizer (constraint)
    server_constraints: bool = False  # a server's structured outputs (constrained_completion)
    attribution: bool = False  # gradient attribution of prompt positions (local engine)
    trees: bool = False  # can grow token trees (grow_tree)
    # Every position's distribution over all V (logprob_blocks): exact comparisons.
    full_rows: bool = False
    max_top_k: int | None = None  # largest top-k the backend returns (None: any)
    kind: str = "local"  # shown in the header: "local", "vLLM", "llama.cpp", ...
    # (view, sentence): why a view is missing, where the backend can say more than
    # "not available" (e.g. which server feature it would need).
    reasons: tuple[tuple[str, str], ...] = ()

    def missing(self, feature: Feature | str) -> str | None:
        """One sentence when `feature` is not served, else None."""
        feature = Feature(feature)
        if feature is Feature.CONSTRAINTS:
            return None if self.constraints else self._no_constraints()
        if feature is Feature.SERVER_CONSTRAINTS:
            return None if self.server_constraints else (
                "Constraints (--choice, --regex, --json-schema, --grammar) are local-only on this "
                f"server ({self.kind}); vLLM applies them with its structured outputs.")
        name, label = _FLAGS[feature]
        if getattr(self, name):
            return None
        return dict(self.reasons).get(feature.value) or f"{label} is not available on this backend ({self.kind})."

    def require(self, feature: Feature | str) -> None:
        """Raise Unavailable (one sentence) when `feature` is not served."""
        if why := self.missing(feature):
            raise Unavailable(why)

    def _no_constraints(self) -> str:
        # A server with structured outputs generates whole constrained completions, which
        # trace replays; the app's step-by-step mask needs the logits row.
        elsewhere = ("; trace --server applies them on this server (its structured outputs)"
                     if self.server_constraints else "")
        return ("Constraints are local-only: they need the model's tokenizer and logits, which "
                f"this backend ({self.kind}) does not hand out{elsewhere}.")


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

    def prompt_values(self, key: Hashable, *, progress: Progress | None = None,
                      cancelled: IsCancelled | None = None) -> tuple[TokenRecord, ...]:
        """Records of prompt `key` with every position's numbers filled in: records()
        where capabilities.prompt_logprobs, else fetched now (cancellable, cached)."""

    # -- views and optional features: each raises Unavailable (the sentence of
    # capabilities.missing) when its Feature is not served ---------------------------------
    def influence(self, key: Hashable) -> np.ndarray:
        """float32 [n] in [0, 1]: attention influence of each position on the next token."""

    def layer_probs(self, key: Hashable, token_ids: Sequence[int]) -> np.ndarray:
        """float32 [L+1, k]: logit-lens p^l[t] after the last position, per given token."""

    def prompt_layer_probs(self, key: Hashable) -> np.ndarray:
        """float32 [L+1, n]: column i = p^l_{i-1}[t_i]; column 0 is NaN."""

    def attribution(self, key: Hashable, target: int, method: str = "saliency", *,
                    n_steps: int | None = None, progress: Progress | None = None,
                    cancelled: IsCancelled | None = None,
                    baseline: str | None = None, position: int | None = None) -> Attribution:
        """Scores per position of prompt `key` for log p_base(target) after its last
        position (position: after its first `position` tokens instead); method in types.ATTRIBUTION_METHODS; n_steps and baseline (a name in
        types.ATTRIBUTION_BASELINES) None = the configured ones ([attribution] n_steps,
        baseline). Raises Unavailable or Cancelled."""

    def grow_tree(self, key: Hashable, settings, *, progress: Progress | None = None,
                  cancelled: IsCancelled | None = None):
        """An explorer.tree.TokenTree of the likely continuations of prompt `key` (synced
        first); settings: explorer.tree.TreeSettings. Cancelling returns the part grown.
        Raises Unavailable without Capabilities.trees."""

    # -- the sampler side ----------------------------------------------------------------
    def encode_plain(self, text: str) -> list[int]:
        """Text -> ids with no special tokens added (forced text, tracked text)."""

    def sampling_defaults(self) -> SamplingSettings:
        """The sampler settings from the model's generation_config.json (neutral when it
        has none, and on a server: its generation config is not ours to read)."""

    @property
    def eos_ids(self) -> frozenset[int]:
        """Token ids that end a generation (a server names them as it draws them)."""

    def chat_ids(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """Feature.CHAT: the model's chat template over `messages` ({"role", "content"})
        with the generation prompt added. Raises ChatTemplateError (one sentence) when
        this model has no template or it fails to render them."""

    def next_logits(self, key: Hashable) -> np.ndarray:
        """Feature.SAMPLING: float32 [V], the model's raw logits after the last position
        of prompt `key` (fp32, after soft-capping). Kept from the step that computed them,
        so a sampler knob change needs no forward pass."""

    def logits_before(self, key: Hashable, index: int) -> np.ndarray:
        """Feature.SAMPLING: float32 [V], the raw logits after the first `index` tokens of
        prompt `key` (1 <= index <= n): the distribution token `index` was drawn from, for
        the table at a past position. Kept, or rebuilt in one decode step."""

    def tracked(self, key: Hashable, token_ids: Sequence[int], *,
                progress: Progress | None = None,
                cancelled: IsCancelled | None = None) -> TrackedSeries:
        """Feature.TRACKED: p_base of each token after every position of prompt `key`,
        exact at any rank; with the logit lens also per layer after the last position.
        progress(done, total) counts positions; cancelled is polled between chunks."""

    def follow(self, key: Hashable, token_ids: Sequence[int]) -> None:
        """A hint that `tracked(key, token_ids)` will be asked after later appends: a
        backend that can fetch them with each append's own work (a vLLM server) does so,
        the others ignore it. Changes no result."""

    def draw(self, key: Hashable, settings: SamplingSettings, prompt_len: int,
             candidates: Sequence[int] = ()) -> ServerDraw:
        """Feature.SERVER_SAMPLING: the token the backend's own sampler draws after prompt
        `key` (synced) with these settings; presence/frequency penalties count the ids
        after `prompt_len`. The token at position n uses a seed derived from
        (settings.seed, n): the same seed, prompt and settings give the same tokens."""

    def constraint(self, spec: ConstraintSpec) -> Constraint:
        """Feature.CONSTRAINTS: the spec compiled for this model's tokenizer and logits
        width. Raises ConstraintError (one sentence) for an invalid spec."""

    def constrained_completion(self, ids: Sequence[int], spec: ConstraintSpec, max_tokens: int,
                               settings: SamplingSettings | None = None):
        """Feature.SERVER_CONSTRAINTS: the whole completion after `ids` under the
        constraint (explorer.remote.structured.Completion), greedy or drawn with
        `settings`."""

    def load_whole(self, key: Hashable, ids: Sequence[int], tables_from: int) -> None:
        """Feature.SERVER_CONSTRAINTS: load `ids` as prompt `key` in one request, with
        the tables of positions tables_from.. (a completion known in advance, replayed)."""

    def logprob_blocks(self, ids: Sequence[int], *, progress: Progress | None = None,
                       cancelled: IsCancelled | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Feature.ROWS: (first row, float32 [r, V] log-probs) blocks of every position's
        distribution after `ids`, in order, from one chunked pass (never [N, V] at once).
        Row i is the distribution after position i. Raises Cancelled when cancelled."""

    def position_tops(self, ids: Sequence[int], *, progress: Progress | None = None,
                      cancelled: IsCancelled | None = None) -> list[dict[int, float]]:
        """What a server knows of the distribution after each position of `ids`: {token id:
        log-prob} of its top-K and of the token that follows (a bounded comparison; a
        local backend serves Feature.ROWS instead). Raises Unavailable (one sentence)
        where the server gives no per-position top-K."""

    def vocabulary(self) -> tuple[str, ...] | None:
        """Every token's text by id (the tokenizer's own spelling), to check that two
        backends share a tokenizer; None where it is not known without V requests (a
        server)."""

    def close(self) -> None:
        """Release what the backend holds (connections, caches)."""
