"""Attribution: how much each prompt token drove the prediction of one candidate.

For a target token t after the last position, with e_i the input embedding of position i
(the rows the model's own embedding layer returns) and f(e) = log p_base(t | e) in fp32:

- saliency:              ||df/de_i||_2
- input x gradient:      sum_d e_{i,d} * df/de_{i,d}
- integrated gradients:  sum_d (e_{i,d} - b_{i,d}) * integral_0^1 df/de_{i,d}(b + a(e - b)) da,
                         baseline b = zero embeddings by default (ig_baseline.py has the
                         others), the integral by n_steps gradient points: from zero, placed
                         in ln(alpha) where f moves (ig_path.py says why); from a non-zero
                         baseline, Gauss-Legendre evenly on [0, 1] (f is smooth there).

captum (Meta's attribution library) computes the gradients (Saliency, InputXGradient, and
Saliency at each integrated-gradients point); we reduce over the embedding dimension and,
for integrated gradients, weight the points. The embeddings are an fp32 leaf that is cast to the model's dtype on
the way in, and log p comes out of an fp32 log-softmax, so a bf16 model still yields fp32
gradients at both ends. Each forward is the whole prompt without a KV cache (gradients
need the graph); integrated gradients runs its scan and its n_steps points in batches of
about `batch_tokens` positions, so memory stays bounded on long prompts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np
import torch

from explorer.backend.errors import Cancelled, Unavailable
from explorer.backend.types import ATTRIBUTION_METHODS, Attribution

from . import ig_path, placement
from .ig_baseline import Baselines
from .kv import LRU

DEFAULT_STEPS = 32
# Positions per integrated-gradients batch (steps x prompt length): bounds activation memory.
BATCH_TOKENS = 2048
CACHE_ENTRIES = 64
# Where the gradient points go: "log" = the scan and log-spaced panels of ig_path.py,
# "even" = Gauss-Legendre on [0, 1] (captum's placement), "auto" = log from the zero
# baseline, even from the others (benchmarks/ig_completeness.py measured both).
GRIDS = ("auto", "log", "even")


class Attributor:
    """Attribution on one transformers causal LM, cached per (ids, target, method, steps)."""

    def __init__(self, model, *, name: str = "the model", batch_tokens: int = BATCH_TOKENS,
                 cache_entries: int = CACHE_ENTRIES, eos_id: int | None = None,
                 grid: str = "auto"):
        if grid not in GRIDS:
            raise ValueError(f"unknown grid {grid!r}; use one of {GRIDS}")
        self.model = model
        self.name = name
        self.batch_tokens = max(1, int(batch_tokens))
        self.grid = grid
        self._cache = LRU(cache_entries)
        self._embed = self._input_embeddings(model)
        self._baselines = Baselines(self._embed, lambda: placement.input_device(self.model), eos_id)
        params = inspect.signature(model.forward).parameters
        self._keep_last = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        self._takes_embeds = "inputs_embeds" in params or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())

    @staticmethod
    def _input_embeddings(model):
        try:
            return model.get_input_embeddings()
        except (NotImplementedError, AttributeError):
            return None

    @property
    def available(self) -> bool:
        return self._embed is not None and self._takes_embeds

    def unavailable_reason(self) -> str:
        return (f"{self.name} does not expose its input embeddings, so attribution is "
                "unavailable.")

    # ----------------------------------------------------------------- public
    def attribute(self, ids: Sequence[int], target: int, method: str, *,
                  n_steps: int = DEFAULT_STEPS, baseline: str = "zero",
                  progress: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None) -> Attribution:
        """Scores per position of `ids` for log p_base(target) after the last position
        (`n_steps` and `baseline` matter to integrated gradients only).
        Raises Unavailable (one sentence) or Cancelled (nothing cached then)."""
        if method not in ATTRIBUTION_METHODS:
            raise ValueError(f"unknown attribution method {method!r}; use one of {ATTRIBUTION_METHODS}")
        if not self.available:
            raise Unavailable(self.unavailable_reason())
        ids = tuple(int(i) for i in ids)
        if not ids:
            raise ValueError("attribution needs a prompt of at least one token")
        ig = method == "integrated_gradients"
        steps = max(1, int(n_steps)) if ig else None
        key = (ids, int(target), method, steps, baseline if ig else None)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        run = _Run(self, int(target), cancelled, progress, total=steps or 1)
        embeds = self.embeddings(ids)
        if ig:
            start = self._baselines.build(baseline, ids, embeds)
            result = self._integrated_gradients(ids, run, embeds, steps, start, baseline)
        else:
            result = self._gradient_method(ids, run, embeds, method)
        self._cache.put(key, result)
        return result

    def embeddings(self, ids: Sequence[int]) -> torch.Tensor:
        """e: fp32 [1, n, d], exactly what the model's embedding layer gives for `ids`
        (so model(inputs_embeds=e) == model(input_ids=ids))."""
        device = placement.input_device(self.model)  # a split model's embeddings may sit on disk
        with torch.no_grad():
            e = self._embed(torch.tensor([list(ids)], dtype=torch.long, device=device))
        return e.detach().float()

    def log_p(self, embeds: torch.Tensor, target: int) -> torch.Tensor:
        """f(e) = log p_base(target) after the last position, fp32 [batch]; differentiable."""
        dtype = self._embed.weight.dtype
        out = self.model(inputs_embeds=embeds.to(dtype), use_cache=False, return_dict=True,
                         **self._keep_last)
        return torch.log_softmax(out.logits[:, -1].float(), dim=-1)[:, target]

    # ----------------------------------------------------------------- methods
    def _gradient_method(self, ids, run: _Run, embeds: torch.Tensor, method: str) -> Attribution:
        from captum.attr import InputXGradient, Saliency

        embeds.requires_grad_(True)
        with torch.enable_grad():
            if method == "saliency":
                grads = Saliency(run.forward).attribute(embeds, abs=False)
                values = grads[0].norm(dim=-1)
            else:
                values = InputXGradient(run.forward).attribute(embeds)[0].sum(dim=-1)
        return Attribution(ids=ids, target=run.target, method=method,
                           values=values.detach().cpu().numpy().astype(np.float32),
                           log_p=run.last_value)

    def _integrated_gradients(self, ids, run: _Run, embeds: torch.Tensor, steps: int,
                              baseline: torch.Tensor, name: str) -> Attribution:
        from captum.attr import Saliency

        delta = embeds - baseline  # the path is baseline + alpha * delta
        batch = max(1, self.batch_tokens // len(ids))
        with torch.no_grad():  # the two ends of the path
            f_e, f_b = self.log_p(torch.cat([embeds, baseline]), run.target).tolist()
        if self.grid == "even" or (self.grid == "auto" and name != "zero"):
            alphas, weights = ig_path.even(steps)
        else:
            with torch.no_grad():  # the forward-only scan toward the baseline

                def probe(alphas: list[float]) -> list[float]:
                    run.check()
                    return self.log_p(torch.cat([baseline + a * delta for a in alphas]),
                                      run.target).tolist()

                decades, values = ig_path.scan(probe, f_e, f_b, ig_path.deepest_decade(delta), batch)
            alphas, weights = ig_path.schedule(decades, values, steps)
        run.total = len(alphas)
        avg = torch.zeros_like(embeds[0], dtype=torch.float64)
        with torch.enable_grad():
            for start in range(0, len(alphas), batch):
                a = alphas[start:start + batch]
                # Back-propagate sqrt(alpha) * f: deep on the path from zero the gradient
                # grows like 1/alpha (past fp32's range by alpha ~ 1e-38) while near the
                # output it is O(1); the square root keeps both ends inside fp32. Undone in
                # the weights.
                scale = torch.tensor(np.sqrt(a), dtype=embeds.dtype, device=embeds.device)
                w = torch.tensor(weights[start:start + batch] / np.sqrt(a), dtype=torch.float64,
                                 device=embeds.device)
                points = (baseline + torch.tensor(a, dtype=embeds.dtype, device=embeds.device)
                          [:, None, None] * delta).requires_grad_(True)
                grads = Saliency(lambda x: run.forward(x) * scale[: x.shape[0]]).attribute(
                    points, abs=False)  # sqrt(alpha) * df/de at each point
                avg += (w[:, None, None] * grads.detach().double()).sum(dim=0)
        values = (delta[0].double() * avg).sum(dim=-1)
        return Attribution(ids=ids, target=run.target, method="integrated_gradients",
                           values=values.detach().cpu().numpy().astype(np.float32),
                           log_p=float(f_e), log_p_baseline=float(f_b), n_steps=steps,
                           baseline=name)


class _Run:
    """The forward function handed to captum for one request: polls `cancelled` before
    every batch and reports progress in evaluated points."""

    def __init__(self, owner: Attributor, target: int, cancelled, progress, total: int):
        self.owner, self.target = owner, target
        self.cancelled, self.progress, self.total = cancelled, progress, total
        self.done = 0
        self.last_value = float("nan")

    def check(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise Cancelled("The attribution was cancelled.")

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        self.check()
        out = self.owner.log_p(embeds, self.target)
        self.last_value = float(out[-1].detach())
        self.done = min(self.total, self.done + embeds.shape[0])
        if self.progress is not None:
            self.progress(self.done, self.total)
        return out
