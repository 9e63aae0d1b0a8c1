"""Where integrated gradients evaluates the gradient on the path alpha * e, alpha in [0, 1]
(the zero baseline; from a baseline b the path is b + alpha (e - b), and `scan` and
`schedule` work on it the same way, but such a path is better served by the even points
refined where needed of ig_run.py, which start at `clenshaw_curtis`: see
benchmarks/ig_completeness.py).

IG_i = sum_d e_{i,d} * integral_0^1 df/de_{i,d}(alpha e) dalpha, with f = log p(t | .).
Summed over positions the integrand is df/dalpha, so sum_i IG_i = f(e) - f(0)
(completeness) when the integral is computed well.

Why not an even grid on [0, 1]: a model with RMSNorm re-normalises a shrinking input, so
f(alpha e) does not fade out as alpha goes to 0. Each normalisation layer turns from
"scale-free" to "linear" where its input drops below sqrt(eps); in the linear range it
amplifies by about 1/sqrt(eps), so the next layer turns at an alpha hundreds of times
smaller, and so on down the stack. f moves in steps over 15 to 45 decades of alpha
(measured: tiny Llama/Qwen2 to 1e-16, the embedded model to 1e-18, Gemma2 to 1e-33,
SmolLM2-135M to 1e-45; GPT-2, which adds position embeddings that do not shrink, only
above 1e-4), and points spread evenly on [0, 1] never look there.

So we change variables to u = ln(alpha) (dalpha = alpha du) and spend the gradient
evaluations where f moves:
1. a forward-only scan (no backward pass) of f at alpha = 10^-k, k = 1/8, 2/8, ... 1, then
   every half decade, until f sits
   at f(0) (within SETTLED of |f(e) - f(0)|) twice in a row, or alpha * max|e| would fall
   below the smallest normal fp32 number; below that last alpha, f is linear in alpha and
   its share of the integral is negligible (the scan checked it);
2. half the n_steps gradient points go to the top decade [0.1, 1], evenly in alpha; of
   the rest, half are shared evenly among the half-decade panels below and half in
   proportion to how far f moves across each (|f(a_k) - f(a_{k+1})|); in each panel they
   are a Gauss-Legendre rule in u, with weight w * alpha (the Jacobian).
The scan costs forward passes only (no graph is kept); the points and weights are exact
quadrature of the same integral, so the scores are still integrated gradients as defined,
computed better. Whether they add up is measured, never forced: `Attribution.completeness`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

SCAN_STEP = 0.5  # decades between scan points
# The top decade [0.1, 1] holds 90% of the path's length and, on a model without the
# cascade (GPT-2), nearly all of f's movement: at least half the points go there, evenly
# in alpha (Gauss-Legendre on [0.1, 1], as captum places them on [0, 1]).
TOP_SHARE = 0.5
# alpha * max|e| stays a normal fp32 number (the smallest is 1.2e-38).
SMALLEST = float(torch.finfo(torch.float32).tiny)
SETTLED = 1e-4  # |f(alpha e) - f(0)| below this share of |f(e) - f(0)|: the path has settled
FLOOR = 1e-3  # share of the total movement every panel counts as, so a quiet one may get a point


def deepest_decade(embeds: torch.Tensor) -> float:
    """How many decades below 1 alpha may go before alpha * max|e| is no longer a normal
    fp32 number (bf16 and fp16 models get fp32 embeddings cast down; bf16 has fp32's range)."""
    top = float(embeds.abs().max())
    if top <= 0 or not math.isfinite(top):
        return 0.0
    return max(0.0, math.log10(top / SMALLEST))


def scan(f: Callable[[list[float]], list[float]], f_e: float, f_0: float, deepest: float,
         batch: int) -> tuple[list[float], list[float]]:
    """(decades, values): f(10^-k e) at k = 0, 0.5, 1, ... until settled at f(0).
    `f` maps a list of alphas to f at each (forward passes only)."""
    decades, values = [0.0], [f_e]
    tol = SETTLED * abs(f_e - f_0)
    settled = 0
    k = 0.0
    while settled < 2 and k + SCAN_STEP <= deepest:
        ks = []
        for _ in range(max(1, batch)):
            k = k + SCAN_STEP
            if k > deepest:
                break
            ks.append(k)
        if not ks:
            break
        for kk, v in zip(ks, f([10.0 ** -x for x in ks])):
            decades.append(kk)
            values.append(v)
            settled = settled + 1 if abs(v - f_0) <= tol else 0
            if settled == 2:
                break
    return decades, values


def allocate(movement: np.ndarray, n: int) -> np.ndarray:
    """n points over panels in proportion to `movement` (largest remainders)."""
    share = movement / movement.sum() * n if movement.sum() > 0 else np.full(len(movement), n / len(movement))
    count = np.floor(share).astype(int)
    for i in np.argsort(-(share - count), kind="stable")[: n - int(count.sum())]:
        count[i] += 1
    return count


def _panel(k_top: float, k_low: float, count: int, in_log: bool):
    """Gauss-Legendre on alpha in [10^-k_low, 10^-k_top]: in u = ln(alpha) (weights times
    the Jacobian alpha) or evenly in alpha."""
    nodes, w = np.polynomial.legendre.leggauss(int(count))
    lo, hi = (-k_low * math.log(10), -k_top * math.log(10)) if in_log else (10 ** -k_low, 10 ** -k_top)
    x = lo + (nodes + 1) / 2 * (hi - lo)
    w = w / 2 * (hi - lo)
    return (np.exp(x), w * np.exp(x)) if in_log else (x, w)


def schedule(decades: list[float], values: list[float], n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights), n_steps of each: sum_k w_k g(alpha_k) approximates the integral of
    g over [10^-decades[-1], 1]. The top decade gets at least TOP_SHARE of the points,
    the panels below the rest in proportion to how far f moves across each."""
    vals = np.asarray(values, dtype=np.float64)
    cut = next((i for i, k in enumerate(decades) if k >= 1), len(decades) - 1)
    edges = [decades[0]] + list(decades[cut:])
    kept = [vals[0]] + list(vals[cut:])
    movement = np.abs(np.diff(np.asarray(kept)))
    if len(movement) == 0:  # f(e) is f(0) already: the midpoint rule
        return np.array([0.5]), np.array([1.0])
    movement = movement + FLOOR * max(float(movement.sum()), 1e-12)
    top = allocate(movement, n_steps)[0]
    if len(movement) > 1:
        top = max(top, math.ceil(TOP_SHARE * n_steps))
        # Below the top decade: half the points evenly per panel (f wiggles inside a panel
        # as well as across it), half where the scan saw f move.
        rest = n_steps - top
        even = allocate(np.ones(len(movement) - 1), rest // 2)
        counts = [top] + list(even + allocate(movement[1:], rest - rest // 2))
    else:
        counts = [n_steps]
    alphas, weights = [], []
    for i, count in enumerate(counts):
        if count > 0:
            a, w = _panel(edges[i], edges[i + 1], count, in_log=i > 0)
            alphas.append(a)
            weights.append(w)
    return np.concatenate(alphas), np.concatenate(weights)


def clenshaw_curtis(n_steps: int) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
    """(keys, alphas, weights): Clenshaw-Curtis on [0, 1] with n_steps intervals (n_steps + 1
    points, both ends included), alpha_j = sin^2(j pi / (2 n)). Nested: the points of n
    are among those of 2n, so doubling the steps reuses every gradient already computed.
    Each point's key is j / n in lowest terms, so equal points of different rules match
    exactly. Accuracy on smooth integrands is that of Gauss-Legendre with as many points
    (Trefethen, "Is Gauss quadrature better than Clenshaw-Curtis?", SIAM Review 2008)."""
    n = max(2, int(n_steps) + int(n_steps) % 2)  # the weight formula wants an even n
    j = np.arange(n + 1)
    theta = j * np.pi / n
    # w_j = c_j / n (1 - sum_k b_k cos(2 k theta_j) / (4 k^2 - 1)), on [-1, 1]; halved for [0, 1].
    k = np.arange(1, n // 2 + 1)
    b = np.where(k == n // 2, 1.0, 2.0)
    s = (b[None, :] * np.cos(2 * k[None, :] * theta[:, None]) / (4 * k[None, :] ** 2 - 1)).sum(axis=1)
    c = np.where((j == 0) | (j == n), 1.0, 2.0)
    weights = c / n * (1 - s) / 2
    alphas = np.sin(theta / 2) ** 2
    keys = [(int(a // math.gcd(a, n)), int(n // math.gcd(a, n))) for a in j]
    return keys, alphas, weights
