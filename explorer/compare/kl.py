"""The numbers of a comparison, from plain arrays: numpy only, no model.

Exact: per row, KL(p_A || p_B) = sum_v p_A[v] (ln p_A[v] - ln p_B[v]) over the full
vocabulary in fp32 (accumulated in fp64 along the row), the actual next token's log-prob
on each side, and each side's top-1.

Bound: a server sends its top-K only. Both distributions coarsened to the tokens whose
probability is known on *both* sides (of the union of the two top-K lists, and the actual
token), plus one "rest" bucket holding the remaining mass of each. Coarsening never raises
a KL (data-processing inequality), so this is a lower bound of the true KL, and is always
written as one. A union token one side did not list joins the rest: its probability there
is unknown, and a guessed value would not keep the bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def kl_rows(lp_a: np.ndarray, lp_b: np.ndarray) -> np.ndarray:
    """float64 [r]: KL(p_A || p_B) of each row of two [r, V] fp32 log-prob blocks. A token
    with p_A = 0 adds nothing; one with p_A > 0 and p_B = 0 makes the row infinite."""
    p_a = np.exp(lp_a)
    diff = lp_a - lp_b
    # 0 * (-inf - x) is NaN in IEEE; its term is 0 by the definition's convention.
    terms = np.where(p_a > 0, p_a * diff, 0.0)
    return np.maximum(terms.sum(axis=-1, dtype=np.float64), 0.0)


def row_numbers(lp_a: np.ndarray, lp_b: np.ndarray, targets: Sequence[int | None]) -> dict:
    """Per row of two [r, V] log-prob blocks: kl, each side's log-prob of the row's target
    (the token that follows; None after the last position) and each side's top-1."""
    rows = np.arange(lp_a.shape[0])
    have = np.array([t is not None for t in targets])
    tgt = np.array([t if t is not None else 0 for t in targets], dtype=np.int64)
    return {
        "kl": kl_rows(lp_a, lp_b),
        "logprob_a": np.where(have, lp_a[rows, tgt], np.nan),
        "logprob_b": np.where(have, lp_b[rows, tgt], np.nan),
        "top1_a": lp_a.argmax(axis=-1),
        "top1_b": lp_b.argmax(axis=-1),
    }


def kl_bound(known_a: Mapping[int, float], known_b: Mapping[int, float]) -> float:
    """A lower bound of KL(p_A || p_B) from each side's known log-probs ({token id: ln p}):
    the KL of both coarsened to the tokens known on both sides plus one rest bucket."""
    shared = [t for t in known_a if t in known_b]
    p_a = np.array([math.exp(known_a[t]) for t in shared], dtype=np.float64)
    p_b = np.array([math.exp(known_b[t]) for t in shared], dtype=np.float64)
    total = 0.0
    for pa, pb in zip(p_a, p_b):
        total += _term(pa, pb)
    # Rounding in the server's numbers can make the listed mass a hair above 1.
    total += _term(max(0.0, 1.0 - float(p_a.sum())), max(0.0, 1.0 - float(p_b.sum())))
    return max(total, 0.0)


def _term(pa: float, pb: float) -> float:
    if pa <= 0.0:
        return 0.0
    if pb <= 0.0:
        return math.inf
    return pa * (math.log(pa) - math.log(pb))


def known_from_row(lp: np.ndarray, ids) -> dict[int, float]:
    """{id: ln p} of a full log-prob row at the given ids (the local side of a bound)."""
    return {int(t): float(lp[int(t)]) for t in ids}
