"""From log-prob rows to what the layers above see: per-position statistics and records.

Pure functions of tensors and plain values; no model, no cache. A row is the distribution
*after* a position; the record of position i reads row i (its next-token table) and row
i-1 (how likely t_i was).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from explorer.backend.types import Candidate, TokenRecord

from . import metrics

# Rows of logits reduced at once: bounds the fp32 [rows, V] temporaries.
METRIC_ROWS = 64


@dataclass
class RowStats:
    """Reductions of one position's distribution, as plain values."""

    entropy: float
    top_ids: list[int]
    top_logprobs: list[float]
    next_logprob: float | None  # of the token that actually follows, if any
    next_rank: int | None


def row_stats(lp: torch.Tensor, targets: Sequence[int | None], k: int) -> list[RowStats]:
    """lp: [r, V] log-probs; targets[j]: the token after row j's position, or None."""
    k = min(k, lp.shape[-1])
    ent = metrics.entropy(lp).tolist()
    top_lp, top_ids = metrics.top_k(lp, k)
    top_lp, top_ids = top_lp.tolist(), top_ids.tolist()
    known = [i for i, t in enumerate(targets) if t is not None]
    next_lp, next_rank = {}, {}
    if known:
        rows = lp[known]
        t = torch.tensor([targets[i] for i in known], device=lp.device)
        lps = rows.gather(-1, t[:, None])[:, 0].tolist()
        ranks = metrics.rank_of(rows, t).tolist()
        next_lp, next_rank = dict(zip(known, lps)), dict(zip(known, ranks))
    return [
        RowStats(ent[r], top_ids[r], top_lp[r], next_lp.get(r), next_rank.get(r))
        for r in range(lp.shape[0])
    ]


def reduce_logits(logits: torch.Tensor, ids: Sequence[int], pos: int, want_from: int,
                  k: int, stats: dict[int, RowStats], keep_last: int) -> list[torch.Tensor]:
    """Stats of positions pos.. (from want_from on) into `stats`, a few rows at a time.

    logits: [q, V] of positions pos..pos+q-1. Returns the log-prob rows of the last
    `keep_last` positions (kept as cache tails)."""
    q = logits.shape[0]
    kept: list[torch.Tensor] = []
    for a in range(0, q, METRIC_ROWS):
        b = min(a + METRIC_ROWS, q)
        lp = metrics.log_probs(logits[a:b])
        lo = max(a, want_from - pos)
        if lo < b:
            targets = [ids[pos + r + 1] if pos + r + 1 < len(ids) else None for r in range(lo, b)]
            for r, s in zip(range(lo, b), row_stats(lp[lo - a:], targets, k)):
                stats[pos + r] = s
        if b > q - keep_last:
            kept.extend(lp[max(0, q - keep_last - a):].clone().unbind(0))
    return kept


def make_record(ids: Sequence[int], i: int, stats: dict[int, RowStats],
                text: Callable[[int], str], ln_vocab: float) -> TokenRecord:
    here = stats[i]
    before = stats.get(i - 1) if i > 0 else None
    top = tuple(
        Candidate(token_id=t, text=text(t), prob=math.exp(lp), logprob=lp)
        for t, lp in zip(here.top_ids, here.top_logprobs)
    )
    return TokenRecord(
        token_id=ids[i],
        text=text(ids[i]),
        logprob=None if before is None else before.next_logprob,
        rank=None if before is None else before.next_rank,
        entropy=None if before is None else before.entropy,
        entropy_norm=None if before is None else before.entropy / ln_vocab,
        next_entropy=here.entropy,
        next_entropy_norm=here.entropy / ln_vocab,
        top=top,
    )
