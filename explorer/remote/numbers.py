"""Turning a server's top-K log-probs into records, honestly. Pure Python and numpy.

A server returns the K most likely tokens of a distribution, not all V. From them:
- a token's log-prob and rank are exact when the token is among the K (servers compute
  them from the full softmax);
- the entropy is exact only when all V came back. Otherwise we report a lower bound:
  every token left out has p <= p_K (the K-th largest), so each contributes
  -p ln p >= -p ln p_K, and the left-out mass r = 1 - sum(top) contributes >= -r ln p_K.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from explorer.backend.types import Candidate, TokenRecord


@dataclass(frozen=True, slots=True)
class Distribution:
    """What a server said about one next-token distribution, reduced to what we show: its
    top entries (most likely first), its entropy (exact or a lower bound), and the exact
    log-prob and rank of a few chosen tokens outside the top."""

    top: tuple[tuple[int, float], ...]  # (token id, log-prob), most likely first
    entropy: float
    entropy_bound: bool  # True: a lower bound, the server sent fewer than V entries
    known: tuple[tuple[int, float, int], ...] = ()  # (id, log-prob, rank)

    def logprob_of(self, token_id: int) -> float | None:
        for tid, lp, _ in self.known:
            if tid == token_id:
                return lp
        for tid, lp in self.top:
            if tid == token_id:
                return lp
        return None

    def rank_of(self, token_id: int) -> int | None:
        """1 + how many tokens are strictly more likely; None when the server did not say."""
        for tid, _, rank in self.known:
            if tid == token_id:
                return rank
        lp = self.logprob_of(token_id)
        if lp is None:
            return None
        return 1 + sum(1 for _, other in self.top if other > lp)


def make_distribution(pairs, vocab_size: int, *, keep: int | None = None, known=(),
                      track=()) -> Distribution:
    """From (id, log-prob) pairs in any order (ties: lower id first). keep: how many of the
    top to store; known: (id, log-prob, rank) the server reported outside the list; track:
    ids whose log-prob and rank to record from the list before it is cut to `keep`."""
    ordered = sorted(((int(t), float(lp)) for t, lp in pairs), key=lambda p: (-p[1], p[0]))
    h, bound = entropy(ordered, complete=len(ordered) >= vocab_size)
    extra = list(known)
    listed = {t for t, _, _ in extra}
    for want in track:
        if want in listed:
            continue
        for tid, lp in ordered:
            if tid == want:
                extra.append((tid, lp, 1 + sum(1 for _, other in ordered if other > lp)))
                break
    top = tuple(ordered if keep is None else ordered[:keep])
    return Distribution(top, h, bound, tuple(extra))


def entropy(ordered: Sequence[tuple[int, float]], *, complete: bool) -> tuple[float, bool]:
    """(H in nats, is_bound) from (id, log-prob) pairs, most likely first."""
    h, mass = 0.0, 0.0
    for _, lp in ordered:
        if lp == -math.inf or lp <= -9990:  # -9999: vLLM's mark for a masked token
            continue
        p = math.exp(lp)
        h -= p * lp
        mass += p
    if complete or not ordered:
        return h, not complete
    rest = max(0.0, 1.0 - mass)
    last = ordered[-1][1]
    if rest > 0 and last > -9990:
        h += rest * -last
    return h, True


def candidates(dist: Distribution, limit: int, token_text) -> tuple[Candidate, ...]:
    return tuple(Candidate(tid, token_text(tid), math.exp(lp), lp) for tid, lp in dist.top[:limit])


def build_records(ids: Sequence[int], before: Sequence[Distribution | None],
                  after: Sequence[Distribution | None], *, vocab_size: int, limit: int,
                  token_text, tops_from: int = 0) -> tuple[TokenRecord, ...]:
    """One record per position. before[i]: the distribution that predicted ids[i] (None for
    the first token or when not fetched); after[i]: the one after position i (None when
    not fetched). Entropy fields are NaN when unknown; bounds are flagged. Records from
    position `tops_from` on carry their top-K candidates (the last one always does)."""
    ln_v = math.log(vocab_size)
    out = []
    for i, tid in enumerate(ids):
        prev, nxt = before[i], after[i]
        logprob = rank = h = h_norm = None
        h_bound = False
        if prev is not None:
            logprob, rank = prev.logprob_of(tid), prev.rank_of(tid)
            h, h_bound = prev.entropy, prev.entropy_bound
            h_norm = h / ln_v
        if nxt is not None:
            nh, nh_bound = nxt.entropy, nxt.entropy_bound
            top = candidates(nxt, limit, token_text) if i >= min(tops_from, len(ids) - 1) else ()
        else:
            nh, nh_bound, top = math.nan, True, ()
        out.append(TokenRecord(
            token_id=int(tid), text=token_text(tid), logprob=logprob, rank=rank, entropy=h,
            entropy_norm=h_norm, next_entropy=nh, next_entropy_norm=nh / ln_v, top=top,
            entropy_bound=h_bound, next_entropy_bound=nh_bound,
        ))
    return tuple(out)
