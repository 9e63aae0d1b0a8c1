"""Integrated gradients with adaptive steps: refine the path where the scores do not add up.

IG_i = sum_k w_k s_i(alpha_k), with the integrand s_i(alpha) = sum_d (e - b)_{i,d} *
df/de_{i,d}(b + alpha (e - b)) at the quadrature points alpha_k. Summed over positions
the integrand is g(alpha) = df/dalpha, so sum_i IG_i = f(e) - f(b) when the quadrature is good.

From a non-zero baseline the points start as the n_steps + 1 Clenshaw-Curtis points of
[0, 1] (ig_path.py; both ends included, so f(e) and f(b) come out of the gradient passes)
and the rule is the trapezoid over whatever points there are. Every gradient pass also
gives f at its point, so each interval's own error is known exactly: the trapezoid of g
over [a, a'] against f(a') - f(a). While |sum_i IG_i - (f(e) - f(b))| > TOLERANCE *
|f(e) - f(b)| (captum's "convergence delta" beyond 2%), the intervals that carry most of
that error are halved (one batch of new points per round) until max_steps intervals.
Why not double everywhere (Clenshaw-Curtis, as before): on SmolLM2 the path from
mean-keep-first crosses narrow regions where g swings by +-1000 over 0.003 of the path
(a chat-template prompt), so a uniform rule needed more than 512 steps there while
refining those regions needed 121 points; docs/attribution.md has the measurements.

From zero, the log-spaced schedule of ig_path.py (its forward-only scan, then n_steps
points): the zero baseline keeps n_steps (captum's default, with its completeness reported).

The integrand is kept per point as a [n] float64 vector (not the [n, d] gradient), so a
request cancelled mid-way keeps what it finished (`Integrand`) and resumes when asked again
(the refinement is deterministic given the values, so it asks for the same points).
Weights need no gradient of their own: attribution.py switches them off for the request.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np
import torch

from explorer.backend.types import COMPLETENESS_TOLERANCE as TOLERANCE  # within 2% of Δ log p

from . import ig_path

MAX_STEPS = 512
# A round halves the intervals with the largest errors until they hold this share of the
# total error (or a batch is full): the rest wait for the next round, when the halved
# ones may have settled the sum.
COVER = 0.9
NARROWEST = 1e-7  # an interval this short is not halved again (fp32 points would coincide)


class Integrand:
    """What one request has computed so far: per point key, s(alpha) [n] and f(alpha)."""

    def __init__(self) -> None:
        self.s: dict[Hashable, np.ndarray] = {}
        self.f: dict[Hashable, float] = {}
        self.ends: tuple[float, float] | None = None  # log grid: (f(e), f(b)) from forwards
        self.scan: tuple[list[float], list[float]] | None = None  # log grid: ig_path.scan


def converged(total: float, f_e: float, f_b: float, tolerance: float = TOLERANCE) -> bool:
    change = f_e - f_b
    return change == 0 or abs(total - change) <= tolerance * abs(change)


class Path:
    """The straight path b + alpha (e - b) of one request and its gradient passes.

    `forward(points) -> log p [B]` is the attributor's differentiable f (it also counts
    progress and checks for a cancel); `batch` is the number of points per pass."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], embeds: torch.Tensor,
                 baseline: torch.Tensor, batch: int, log_grid: bool) -> None:
        self.forward = forward
        self.baseline = baseline
        self.delta = embeds - baseline
        self.batch = max(1, batch)
        self.log_grid = log_grid

    def points(self, alphas) -> torch.Tensor:
        a = torch.as_tensor(np.asarray(alphas, dtype=np.float64), dtype=self.delta.dtype,
                            device=self.delta.device)
        return self.baseline + a[:, None, None] * self.delta

    def gradients(self, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(s [B, n] float64, f [B]) at `alphas`: one forward and one backward pass."""
        points = self.points(alphas).requires_grad_(True)
        # On the log grid (from zero), back-propagate sqrt(alpha) * f: deep on that path the
        # gradient grows like 1/alpha (past fp32's range by alpha ~ 1e-38) while near the
        # output it is O(1); the square root keeps both inside fp32, undone below.
        scale = np.sqrt(alphas) if self.log_grid else np.ones(len(alphas))
        with torch.enable_grad():
            out = self.forward(points)
            weight = torch.as_tensor(scale, dtype=out.dtype, device=out.device)
            (grad,) = torch.autograd.grad((out * weight).sum(), points)
        s = (self.delta.double() * grad.double()).sum(dim=-1).cpu().numpy() / scale[:, None]
        return s, out.detach().double().cpu().numpy()

    def fill(self, memo: Integrand, keys: list, alphas: np.ndarray) -> None:
        """Compute the integrand at the points not in `memo` yet, `batch` at a time."""
        todo = [i for i, key in enumerate(keys) if key not in memo.s]
        for start in range(0, len(todo), self.batch):
            chunk = todo[start:start + self.batch]
            s, f = self.gradients(alphas[chunk])
            for row, i in enumerate(chunk):
                memo.s[keys[i]], memo.f[keys[i]] = s[row], float(f[row])

    def missing(self, memo: Integrand, keys: list) -> int:
        return sum(key not in memo.s for key in keys)


def trapezoid(alphas: np.ndarray) -> np.ndarray:
    """Weights of the trapezoid rule over sorted points: w_k = (alpha_{k+1} - alpha_{k-1}) / 2,
    the ends half an interval."""
    h = np.diff(alphas)
    w = np.zeros(len(alphas))
    w[:-1] += h / 2
    w[1:] += h / 2
    return w


def interval_errors(alphas: np.ndarray, g: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per interval: the trapezoid of g = df/dalpha over it minus f's actual change there."""
    return (g[1:] + g[:-1]) / 2 * np.diff(alphas) - np.diff(f)


def refine(alphas: np.ndarray, errors: np.ndarray, room: int) -> np.ndarray:
    """The midpoints of the intervals that carry most of the trapezoid's error (`errors`:
    interval_errors; largest first, until COVER of the total or `room` points); none left
    to halve: empty."""
    err = np.abs(errors)
    err[np.diff(alphas) < NARROWEST] = 0.0
    total = float(err.sum())
    chosen, held = [], 0.0
    for j in np.argsort(-err, kind="stable"):
        if len(chosen) >= room or err[j] == 0 or held >= COVER * total:
            break
        chosen.append(j)
        held += float(err[j])
    chosen = np.sort(np.asarray(chosen, dtype=int))
    return (alphas[chosen] + alphas[chosen + 1]) / 2


def start(steps: int) -> np.ndarray:
    """The first points of a non-zero baseline's path: Clenshaw-Curtis, ends exactly 0 and 1."""
    alphas = np.array(ig_path.clenshaw_curtis(steps)[1], dtype=np.float64)
    alphas[0], alphas[-1] = 0.0, 1.0
    return alphas


def log_rule(path: Path, memo: Integrand, steps: int, probe) -> tuple[list, np.ndarray, np.ndarray]:
    """(keys, alphas, weights) of `steps` steps on the zero baseline's log grid."""
    if memo.scan is None:
        memo.scan = probe()
    alphas, weights = ig_path.schedule(*memo.scan, steps)
    return [("log", float(a)) for a in alphas], alphas, weights


def ends(path: Path, memo: Integrand) -> tuple[float, float]:
    """(f(e), f(b)): the path's own end points, or the log grid's forwards."""
    if path.log_grid:
        return memo.ends
    return memo.f[1.0], memo.f[0.0]


def adaptive(path: Path, memo: Integrand, steps: int, top: int, plan) -> tuple[np.ndarray, np.ndarray, list, float]:
    """(alphas, weights, keys, unresolved) of a non-zero baseline's path: the start points,
    then rounds of `refine` until the trapezoid's sum is within TOLERANCE of f(e) - f(b) or
    the path has `top` intervals. `plan(n)` is told the n gradient points a round is about
    to compute. `unresolved` = sum over intervals of |their error| / |f(e) - f(b)|: what
    the completeness would be off by if no interval's error cancelled another's."""
    alphas = start(steps)
    while True:
        keys = [float(a) for a in alphas]
        plan(path.missing(memo, keys))
        path.fill(memo, keys, alphas)
        g = np.array([memo.s[k].sum() for k in keys])
        f = np.array([memo.f[k] for k in keys])
        weights = trapezoid(alphas)
        errors = interval_errors(alphas, g, f)  # each interval's own, exactly
        change = abs(f[-1] - f[0])
        unresolved = float(np.abs(errors).sum() / change) if change else 0.0
        if converged(float(weights @ g), f[-1], f[0]) or len(alphas) - 1 >= top:
            return alphas, weights, keys, unresolved
        new = refine(alphas, errors, min(path.batch, top + 1 - len(alphas)))
        if not len(new):
            return alphas, weights, keys, unresolved
        alphas = np.sort(np.concatenate([alphas, new]))
