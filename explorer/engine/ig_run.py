"""Integrated gradients with adaptive steps: double until the scores add up.

IG_i = sum_k w_k s_i(alpha_k), with the integrand s_i(alpha) = sum_d (e - b)_{i,d} *
df/de_{i,d}(b + alpha (e - b)) at the quadrature points alpha_k. Summed over positions
the integrand is df/dalpha, so sum_i IG_i = f(e) - f(b) when the quadrature is good.

The steps are adaptive: start at n_steps and double until |sum_i IG_i - (f(e) - f(b))|
<= TOLERANCE * |f(e) - f(b)| (captum's "convergence delta" within 2%) or max_steps is
reached. From a non-zero baseline the points are Clenshaw-Curtis on [0, 1] (ig_path.py):
nested, so doubling keeps every gradient already computed and costs only the new points,
and its two ends are the input and the baseline themselves, so f(e) and f(b) come out of
the gradient passes (no separate forward of the ends). From zero, the log-spaced schedule
of ig_path.py (its forward-only scan, then n_steps points): those are not nested, so
the zero baseline keeps n_steps (captum's default, with its completeness reported).

The integrand is kept per point as a [n] float64 vector (not the [n, d] gradient), so a
request cancelled mid-way keeps what it finished (`Integrand`) and resumes when asked again.
Weights need no gradient of their own: attribution.py switches them off for the request.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np
import torch

from explorer.backend.types import COMPLETENESS_TOLERANCE as TOLERANCE  # within 2% of Δ log p

from . import ig_path

MAX_STEPS = 512


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


def rule(path: Path, memo: Integrand, steps: int, probe) -> tuple[list, np.ndarray, np.ndarray]:
    """(keys, alphas, weights) of `steps` steps on this path."""
    if not path.log_grid:
        return ig_path.clenshaw_curtis(steps)
    if memo.scan is None:
        memo.scan = probe()
    alphas, weights = ig_path.schedule(*memo.scan, steps)
    return [("log", float(a)) for a in alphas], alphas, weights


def ends(path: Path, memo: Integrand) -> tuple[float, float]:
    """(f(e), f(b)): the Clenshaw-Curtis rule's own end points, or the log grid's forwards."""
    if path.log_grid:
        return memo.ends
    return memo.f[(1, 1)], memo.f[(0, 1)]
