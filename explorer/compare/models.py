"""Two models on the same token ids, position by position (compare_models).

Both local (Feature.ROWS): one chunked pass of each model in lockstep, a block of rows of
each alive at a time, reduced to exact numbers (explorer.compare.kl) and dropped. A server
on either side: its records' top-K per position (and the actual token's exact log-prob);
(Backend.position_tops) the KL is then a lower bound (kl_bound: True) of the distributions coarsened to the tokens
both sides know, plus one rest bucket.

Line i is position i: the distribution after position i-1 against token t_i, as the trace
JSONL reads. Position 0 has no prediction (None everywhere, never a made-up number).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from explorer.backend import Feature
from explorer.compare.kl import kl_bound, known_from_row, row_numbers

class CompareError(ValueError):
    """The two backends cannot be compared; str() is one sentence."""


@dataclass(frozen=True, slots=True)
class PositionDiff:
    position: int
    token_id: int
    token: str  # the raw decoded text of the token
    logprob_a: float | None  # ln p_A[t_i] after position i-1
    logprob_b: float | None
    kl_ab: float | None  # KL(p_A || p_B) of the distributions that predicted t_i
    top1_a: int | None
    top1_b: int | None

    @property
    def delta(self) -> float | None:
        """ln p_A[t] - ln p_B[t]."""
        return None if self.logprob_a is None else self.logprob_a - self.logprob_b


@dataclass
class ModelComparison:
    name_a: str
    name_b: str
    dtype_a: str
    dtype_b: str
    ids: tuple[int, ...]
    positions: list[PositionDiff]
    kl_bound: bool  # True: every kl_ab is a lower bound (a server on a side)
    # After the last position (the next token's distribution): KL, each side's top-1 and,
    # where known, each side's log-probs ({id: ln p}; all V for a local side).
    next_kl: float = math.nan
    next_top1: tuple[int, int] = (-1, -1)
    next_a: dict[int, float] | np.ndarray | None = field(default=None, repr=False)
    next_b: dict[int, float] | np.ndarray | None = field(default=None, repr=False)

    def scored(self) -> list[PositionDiff]:
        return [p for p in self.positions if p.kl_ab is not None]

    def summary(self) -> dict:
        scored = self.scored()
        kls = [p.kl_ab for p in scored]
        worst = max(scored, key=lambda p: p.kl_ab, default=None)
        agree = sum(1 for p in scored if p.top1_a == p.top1_b)
        return {"summary": True, "model_a": self.name_a, "model_b": self.name_b,
                "dtype_a": self.dtype_a, "dtype_b": self.dtype_b,
                "positions": len(scored), "kl_bound": self.kl_bound,
                "mean_kl": float(np.mean(kls)) if kls else None,
                "max_kl": worst.kl_ab if worst else None,
                "max_kl_position": worst.position if worst else None,
                "top1_agree": agree, "top1_agreement": agree / len(scored) if scored else None}

    def ranked(self) -> list[PositionDiff]:
        """Positions by divergence, largest KL first (ties: earlier first)."""
        return sorted(self.scored(), key=lambda p: (-p.kl_ab, p.position))


def vocabulary_mismatch(a, b) -> str | None:
    """One sentence when backends a and b do not share a tokenizer, else None. Checked on
    the vocabulary: its size, and every token's spelling where both backends know it (a
    server does not list its vocabulary; then a probe text must tokenise the same)."""
    na, nb = a.info.name, b.info.name
    if a.info.vocab_size != b.info.vocab_size:
        return (f"{na} and {nb} do not share a tokenizer ({a.info.vocab_size} and "
                f"{b.info.vocab_size} tokens), so their predictions cannot be compared token by token.")
    va, vb = a.vocabulary(), b.vocabulary()
    if va is not None and vb is not None:
        differ = next((i for i, (x, y) in enumerate(zip(va, vb)) if x != y), None)
        if differ is not None:
            return (f"{na} and {nb} do not share a tokenizer (token {differ} is {va[differ]!r} "
                    f"in one and {vb[differ]!r} in the other), so their predictions cannot be "
                    "compared token by token.")
        return None
    probe = "The quick brown fox, 12345 é 東京\n\tdef f(x):"
    if a.encode_plain(probe) != b.encode_plain(probe):
        return (f"{na} and {nb} do not share a tokenizer (they split the same text differently), "
                "so their predictions cannot be compared token by token.")
    return None


def compare_models(a, b, ids: Sequence[int], *, progress: Callable[[int, int], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> ModelComparison:
    """Compare backends a and b on `ids` (call vocabulary_mismatch first)."""
    ids = tuple(int(i) for i in ids)
    exact = not a.capabilities.missing(Feature.ROWS) and not b.capabilities.missing(Feature.ROWS)
    out = ModelComparison(a.info.name, b.info.name, a.info.dtype, b.info.dtype, ids, [], kl_bound=not exact)
    rows = _exact_rows(a, b, ids, out, progress, cancelled) if exact else \
        _bound_rows(a, b, ids, out, progress, cancelled)
    out.positions = [PositionDiff(0, ids[0], a.decode([ids[0]]), None, None, None, None, None)]
    for i in range(1, len(ids)):
        kl, lpa, lpb, ta, tb = rows[i - 1]
        out.positions.append(PositionDiff(i, ids[i], a.decode([ids[i]]), lpa, lpb, kl, ta, tb))
    out.next_kl, _, _, ta, tb = rows[len(ids) - 1]
    out.next_top1 = (ta, tb)
    return out


def _aligned(gen_a: Iterator, gen_b: Iterator) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Blocks of the same rows from two block generators whose block sizes may differ."""
    (sa, la), (sb, lb) = next(gen_a, (None, None)), next(gen_b, (None, None))
    while la is not None and lb is not None:
        assert sa == sb, (sa, sb)
        r = min(la.shape[0], lb.shape[0])
        yield sa, la[:r], lb[:r]
        sa, la = (sa + r, la[r:]) if r < la.shape[0] else next(gen_a, (None, None))
        sb, lb = (sb + r, lb[r:]) if r < lb.shape[0] else next(gen_b, (None, None))


def _exact_rows(a, b, ids, out, progress, cancelled) -> list[tuple]:
    n = len(ids)
    rows: list[tuple] = []
    blocks_a = a.logprob_blocks(ids, progress=progress, cancelled=cancelled)
    blocks_b = b.logprob_blocks(ids, cancelled=cancelled)
    for start, la, lb in _aligned(blocks_a, blocks_b):
        r = la.shape[0]
        targets = [ids[start + j + 1] if start + j + 1 < n else None for j in range(r)]
        nums = row_numbers(la, lb, targets)
        for j in range(r):
            have = targets[j] is not None
            rows.append((float(nums["kl"][j]),
                         float(nums["logprob_a"][j]) if have else None,
                         float(nums["logprob_b"][j]) if have else None,
                         int(nums["top1_a"][j]), int(nums["top1_b"][j])))
        if start + r == n:  # the last row: the next token's distributions, kept whole
            out.next_a, out.next_b = la[-1].copy(), lb[-1].copy()
    return rows


def _bound_rows(a, b, ids, out, progress, cancelled) -> list[tuple]:
    local_a = not a.capabilities.missing(Feature.ROWS)
    local_b = not b.capabilities.missing(Feature.ROWS)
    known_a = None if local_a else a.position_tops(ids, progress=progress, cancelled=cancelled)
    known_b = None if local_b else b.position_tops(ids, cancelled=cancelled)
    n = len(ids)
    if not (local_a or local_b):  # two servers: what both listed
        out.next_a, out.next_b = known_a[-1], known_b[-1]
        return [_bound_row(known_a[i], known_b[i], ids[i + 1] if i + 1 < n else None,
                           _top1(known_a[i]), _top1(known_b[i])) for i in range(n)]
    full, server = (a, known_b) if local_a else (b, known_a)
    rows: list[tuple] = []
    for start, block in full.logprob_blocks(ids, cancelled=cancelled):
        for j, row in enumerate(block):
            i = start + j
            nxt = ids[i + 1] if i + 1 < n else None
            # The local side is known everywhere: its numbers at the server's tokens.
            mine = known_from_row(row, list(server[i]) + ([nxt] if nxt is not None else []))
            top = int(row.argmax())
            pair = (mine, server[i], top, _top1(server[i])) if local_a else \
                (server[i], mine, _top1(server[i]), top)
            rows.append(_bound_row(*pair[:2], nxt, *pair[2:]))
            if i == n - 1:
                out.next_a, out.next_b = (row.copy(), server[i]) if local_a else (server[i], row.copy())
    return rows


def _bound_row(known_a, known_b, nxt, top1_a, top1_b) -> tuple:
    return (kl_bound(known_a, known_b),
            None if nxt is None else known_a.get(nxt), None if nxt is None else known_b.get(nxt),
            top1_a, top1_b)


def _top1(known: dict[int, float]) -> int:
    return max(known, key=lambda t: (known[t], -t))
