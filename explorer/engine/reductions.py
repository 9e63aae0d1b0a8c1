"""From log-prob rows to what the layers above see: per-position statistics and records.

No model and no KV cache here: tensors in, plain values out. A row is the distribution
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


class RowReducer:
    """Full-vocabulary reductions of log-prob rows, one block of rows at a time.

    One log-softmax per block; entropy, the target's log-prob and rank, and the top-k are
    read from it. Two fp32 [METRIC_ROWS, V] buffers are reused from block to block (and
    step to step), always under inference mode: a fresh full-width allocation per block cost page faults on the order
    of the arithmetic itself. Not thread-safe; the engine's lock serialises model work.
    """

    def __init__(self, k: int):
        self.k = int(k)
        self._work: torch.Tensor | None = None  # [2, METRIC_ROWS, V]

    def _buffers(self, rows: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        width = like.shape[-1]
        work = self._work
        if work is None or work.shape[-1] != width or work.device != like.device:
            work = self._work = torch.empty((2, METRIC_ROWS, width), dtype=torch.float32,
                                            device=like.device)
        return work[0, :rows], work[1, :rows]

    @torch.inference_mode()
    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """[r <= METRIC_ROWS, V] fp32 log-probs in the first buffer (valid until the next
        call: clone what must outlive it)."""
        lp, _ = self._buffers(logits.shape[0], logits)
        return metrics.log_probs(logits, out=lp)

    @torch.inference_mode()
    def stats(self, lp: torch.Tensor, targets: Sequence[int | None]) -> list[RowStats]:
        """lp: [r, V] log-probs; targets[j]: the token after row j's position, or None.
        Only the last rows may lack a target (the end of the prompt)."""
        _, work = self._buffers(lp.shape[0], lp)
        ent = metrics.entropy(lp, work).tolist()
        top_lp, top_ids = metrics.top_k(lp, self.k)
        top_lp, top_ids = top_lp.tolist(), top_ids.tolist()
        known = next((j for j, t in enumerate(targets) if t is None), len(targets))
        assert all(t is None for t in targets[known:]), "targets must be known up to the end"
        lps: list[float] = []
        ranks: list[int] = []
        if known:
            rows = lp[:known]  # a view: no full-width copy
            t = torch.tensor(list(targets[:known]), device=lp.device)
            lps = rows.gather(-1, t[:, None])[:, 0].tolist()
            ranks = metrics.rank_of(rows, t, work[:known]).tolist()
        return [
            RowStats(ent[r], top_ids[r], top_lp[r],
                     lps[r] if r < known else None, ranks[r] if r < known else None)
            for r in range(lp.shape[0])
        ]

    def reduce_logits(self, logits: torch.Tensor, ids: Sequence[int], pos: int, want_from: int,
                      stats: dict[int, RowStats], keep_last: int) -> list[torch.Tensor]:
        """Stats of positions pos.. (from want_from on) into `stats`, a block at a time.

        logits: [q, V] of positions pos..pos+q-1. Returns copies of the log-prob rows of
        the last `keep_last` positions (kept as cache tails)."""
        q = logits.shape[0]
        kept: list[torch.Tensor] = []
        for a in range(0, q, METRIC_ROWS):
            b = min(a + METRIC_ROWS, q)
            lo = max(a, want_from - pos)
            keep_from = max(a, q - keep_last)
            if lo >= b and keep_from >= b:
                continue  # rows nobody needs: skip their log-softmax too
            lp = self.log_probs(logits[a:b])
            if lo < b:
                targets = [ids[pos + r + 1] if pos + r + 1 < len(ids) else None for r in range(lo, b)]
                for r, s in zip(range(lo, b), self.stats(lp[lo - a:], targets)):
                    stats[pos + r] = s
            if keep_from < b:
                kept.extend(lp[keep_from - a:].clone().unbind(0))
        return kept


def make_records(ids: Sequence[int], start: int, stop: int, stats: dict[int, RowStats],
                 text: Callable[[int], str], ln_vocab: float) -> tuple[TokenRecord, ...]:
    """Records of positions start..stop-1 (stats must hold rows start-1..stop-1)."""
    return tuple(make_record(ids, i, stats, text, ln_vocab) for i in range(start, stop))


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
