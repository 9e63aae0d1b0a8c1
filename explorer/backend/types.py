"""Plain values the engine hands upward: Python ints/floats, tuples and numpy arrays.

Nothing here holds a tensor, so the session and UI can keep, compare and hash them freely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Candidate:
    """One entry of a next-token top-k table."""

    token_id: int
    text: str  # display text: leading spaces, newlines, tabs, special tokens visible
    prob: float
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """Everything shown for one prompt position i (token t_i).

    The first token of a prompt has no prediction: logprob, rank, entropy are None.
    `next_*` describe the distribution p_i after this position (the prediction of t_{i+1});
    for the last record that is what the top-k table shows.
    """

    token_id: int
    text: str
    logprob: float | None  # ln p_{i-1}[t_i]
    rank: int | None  # 1-based rank of t_i among all V under p_{i-1}
    entropy: float | None  # H_{i-1} in nats (the distribution that predicted t_i)
    entropy_norm: float | None  # H_{i-1} / ln V
    next_entropy: float  # H_i in nats
    next_entropy_norm: float  # H_i / ln V
    top: tuple[Candidate, ...]  # top-k of p_i, most probable first
    # True when the entropy above is a lower bound from a server's truncated top-K list
    # (explorer/remote/numbers.py), not the entropy over all V.
    entropy_bound: bool = False
    next_entropy_bound: bool = False

    @property
    def prob(self) -> float | None:
        return None if self.logprob is None else float(np.exp(self.logprob))


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str  # what the user asked for (hub id or folder)
    device: str  # "cuda", "mps" or "cpu"
    dtype: str  # "float32" or "bfloat16"
    n_layers: int
    vocab_size: int  # V, the width of the logits
    max_context: int | None  # positions the model supports, None when unknown
    architecture: str  # e.g. "LlamaForCausalLM"


@dataclass(frozen=True)
class TrackedSeries:
    """Tracked tokens through a whole prompt: plain data for the panel, the trace JSONL
    and tests. Row i is the distribution *after* position i (predicting position i+1), so
    the last row is the current next-token distribution (the table's p_base)."""

    token_ids: tuple[int, ...]
    logprobs: np.ndarray  # float32 [n, k]: log p_i[t_j]
    ranks: np.ndarray  # int64 [n, k]: 1 + how many tokens are strictly more likely
    layer_probs: np.ndarray | None  # float32 [L+1, k] after the last position, or None
    # bool [n, k]: True where ranks[i, j] is only a lower bound (a server listed its top-K
    # and the token was not in it); None: every rank is exact.
    rank_bound: np.ndarray | None = None

    @property
    def probs(self) -> np.ndarray:
        return np.exp(self.logprobs)


def _floats(array) -> list[float] | None:
    return None if array is None else [float(x) for x in array]


# Attribution methods (definitions in explorer/engine/attribution.py and the README).
ATTRIBUTION_METHODS: tuple[str, ...] = ("saliency", "input_x_gradient", "integrated_gradients",
                                        "attention")
ATTRIBUTION_LABELS = {"saliency": "saliency", "input_x_gradient": "input x gradient",
                      "integrated_gradients": "integrated gradients", "attention": "attention"}
# saliency is a norm and attention a weight: both >= 0
SIGNED_METHODS = frozenset({"input_x_gradient", "integrated_gradients"})
# Integrated gradients' baselines (explorer/engine/ig_baseline.py); the first is the default
# (docs/attribution.md says why: zero does not converge on RMSNorm models).
ATTRIBUTION_BASELINES: tuple[str, ...] = ("mean-keep-first", "zero", "mean", "eos",
                                          "eos-keep-first")
DEFAULT_BASELINE = ATTRIBUTION_BASELINES[0]
# Integrated gradients' path is refined until the scores are within this share of Δ log p.
COMPLETENESS_TOLERANCE = 0.02
BASELINE_LABELS = {"zero": "zero embeddings", "mean": "mean embedding",
                   "eos": "EOS embedding", "mean-keep-first": "mean embedding, first token kept",
                   "eos-keep-first": "EOS embedding, first token kept"}


@dataclass(frozen=True, slots=True)
class Attribution:
    """How much each prompt position drove log p_base(target) after the last position.

    values[i] is the raw score of position i (signed for input x gradient and integrated
    gradients, >= 0 for saliency). For integrated gradients, `log_p - log_p_baseline` is
    what the scores should add up to (completeness); `sum(values)` is what they add up to.
    """

    ids: tuple[int, ...]
    target: int
    method: str
    values: np.ndarray  # float32 [n]
    log_p: float  # log p_base(target | the prompt), fp32
    log_p_baseline: float | None = None  # integrated gradients: log p(target | baseline)
    n_steps: int | None = None  # integrated gradients only: the steps it took (adaptive)
    baseline: str | None = None  # integrated gradients only: a name in ATTRIBUTION_BASELINES
    # Integrated gradients only: the path's points alpha_k (b + alpha_k (e - b)) and the
    # quadrature weights w_k, so values = sum_k w_k s(alpha_k) can be recomputed elsewhere.
    points: np.ndarray | None = None
    weights: np.ndarray | None = None
    # Integrated gradients from a non-zero baseline: sum over the path's intervals of
    # |trapezoid of df/dalpha - f's actual change| / |log_p - log_p_baseline|. Completeness
    # can be within 2% while this is larger, where intervals' errors cancel.
    unresolved: float | None = None

    @property
    def signed(self) -> bool:
        return self.method in SIGNED_METHODS

    @property
    def completeness(self) -> float | None:
        """Integrated gradients: sum(values) / (log_p - log_p_baseline), 1.0 when the scores
        add up exactly; None for the other methods (or when both ends are equal)."""
        if self.log_p_baseline is None or self.log_p == self.log_p_baseline:
            return None
        return float(np.sum(self.values, dtype=np.float64)) / (self.log_p - self.log_p_baseline)

    @property
    def complete(self) -> bool:
        """False when integrated gradients' scores miss Δ log p by more than 2% (what the
        legend then shows); True otherwise, and for the other methods."""
        c = self.completeness
        return c is None or abs(c - 1.0) <= COMPLETENESS_TOLERANCE

    def fields(self) -> dict:
        """How this result was made, as a JSONL line's fields (None where not applicable)."""
        c = self.completeness
        return {"attribution_method": self.method, "attribution_baseline": self.baseline,
                "attribution_steps": self.n_steps,
                "attribution_completeness": None if c is None else round(c, 6),
                "attribution_points": _floats(self.points), "attribution_weights": _floats(self.weights)}
