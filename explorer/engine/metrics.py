"""Pure metric functions over log-probabilities and attention rows.

They take and return tensors (so the engine can run them on the model's device, chunk by
chunk) and never touch a model; tests feed them small hand-made tensors. Everything is
computed in fp32, whatever the model's dtype.
"""

from __future__ import annotations

import torch


def log_probs(logits: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """log softmax over the last axis, in fp32 (into `out`, an fp32 buffer, when given)."""
    if out is None:
        return torch.log_softmax(logits.float(), dim=-1)
    return torch.log_softmax(logits, dim=-1, dtype=torch.float32, out=out)


def entropy(logprobs: torch.Tensor, work: torch.Tensor | None = None) -> torch.Tensor:
    """H = -sum p ln p in nats over the last axis; p = 0 contributes 0 (not NaN).

    work: an fp32 buffer shaped like logprobs, overwritten; saves a full-width allocation."""
    terms = torch.exp(logprobs, out=work) if work is not None else logprobs.exp()
    terms.mul_(logprobs)  # p ln p; NaN only where p = 0 (0 * -inf), which nansum skips
    return -terms.nansum(dim=-1)


def rank_of(logprobs: torch.Tensor, targets: torch.Tensor,
            work: torch.Tensor | None = None) -> torch.Tensor:
    """1-based rank of each target among all entries: 1 + how many are strictly more likely.

    work: as for entropy. The count is summed as fp32 0/1 values (exact below 2^24
    entries, and several times faster than summing a bool tensor, which widens to int64)."""
    target_lp = logprobs.gather(-1, targets.unsqueeze(-1))
    if work is None:
        return (logprobs > target_lp).sum(dim=-1) + 1
    return torch.gt(logprobs, target_lp, out=work).sum(dim=-1).long() + 1


def top_k(logprobs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs, ids) of the k most likely entries, most likely first."""
    k = min(k, logprobs.shape[-1])
    values, ids = torch.topk(logprobs, k, dim=-1, largest=True, sorted=True)
    return values, ids


def soft_cap(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    """Gemma-style final logit soft-capping, tanh(z / c) * c; identity when cap is None."""
    if cap is None:
        return logits
    return torch.tanh(logits / cap) * cap


def select_heads(rows: torch.Tensor, k: int) -> list[tuple[int, int]]:
    """The k (layer, head) pairs whose attention row varies most over key positions.

    rows: [layers, heads, keys]. Selection runs over all layers and heads together, so a
    sharp head in a late layer wins over a diffuse one in layer 0.
    """
    n_layers, n_heads, _ = rows.shape
    variance = rows.float().var(dim=-1, unbiased=False).flatten().tolist()
    k = max(1, min(k, len(variance)))
    # Stable order (largest variance first, then lowest index) so results are reproducible.
    order = sorted(range(len(variance)), key=lambda i: (-variance[i], i))[:k]
    return [(i // n_heads, i % n_heads) for i in order]


def min_max_scale(values: torch.Tensor) -> torch.Tensor:
    """Scale to [0, 1]; a constant vector (every position equally influential) maps to ones."""
    lo, hi = values.min(), values.max()
    span = hi - lo
    if float(span) <= 1e-12:
        return torch.ones_like(values)
    return (values - lo) / span


def influence(rows: torch.Tensor, k: int) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Attention influence of each key position on the last query (design.md).

    rows: [layers, heads, keys], the last query position's attention weights. Returns the
    mean of the k most variable rows scaled to [0, 1], and the (layer, head) pairs used.
    """
    heads = select_heads(rows, k)
    layer_idx = torch.tensor([l for l, _ in heads], device=rows.device)
    head_idx = torch.tensor([h for _, h in heads], device=rows.device)
    mean_row = rows.float()[layer_idx, head_idx].mean(dim=0)
    return min_max_scale(mean_row), heads
