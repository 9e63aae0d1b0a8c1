"""Seeded, reproducible draws from p_final.

How the seed maps to each step: the token that will sit at position n (n = the number of
ids before it is drawn) is chosen with one uniform number u from numpy's PCG64 seeded with
the pair (seed, n), by inverse CDF over p_final in float64. So a step depends only on the
seed, its position and the distribution: the same seed, prompt and settings give the same
tokens however they are reached (stepping with `space`, autoplay, or popping a token and
drawing again, which gives the same token back; change the seed for another path). The
draw runs on the CPU, so it is the same on every device for the same p_final.
"""

from __future__ import annotations

import secrets

import numpy as np


def fresh_seed() -> int:
    """A random seed for sessions started without one (shown so a run can be repeated)."""
    return secrets.randbelow(2**31)


def uniform(seed: int, position: int) -> float:
    """The uniform number in [0, 1) that picks the token at `position`."""
    return float(np.random.default_rng([int(seed), int(position)]).random())


def draw(p_final: np.ndarray, seed: int, position: int) -> int:
    """The token id at `position`: the first id whose cumulative probability exceeds
    u * total. Tokens with p_final == 0 are never drawn."""
    p = np.asarray(p_final, dtype=np.float64).reshape(-1)
    cdf = np.cumsum(p)
    total = cdf[-1]
    if not total > 0:
        raise ValueError("p_final has no probability mass to draw from")
    token = int(np.searchsorted(cdf, uniform(seed, position) * total, side="right"))
    # Float round-off at the very top can step past the last kept token.
    if token >= p.size or p[token] == 0:
        token = int(np.flatnonzero(p)[-1])
    return token
