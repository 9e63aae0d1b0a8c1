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
from .attribution_run import BACKWARD, LayerWatch, Run
from .ig_baseline import Baselines
from explorer.lru import LRU

DEFAULT_STEPS = 32
# Positions per integrated-gradients batch (steps x prompt length): bounds activation memory.
BATCH_TOKENS = 2048
CACHE_ENTRIES = 64
# Integrated-gradients requests cancelled mid-way whose finished gradient batches are kept,
# so the same request asked again (after a key the model had to serve first) resumes.
PARTIAL_ENTRIES = 4
GRAD_COST = 1.0 + BACKWARD  # a gradient point in forward-point units (attribution_run.py)
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
        self._partial = LRU(PARTIAL_ENTRIES)
        self._watch: LayerWatch | None = None  # the layer hooks, installed on first use
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
        if self._watch is None:
            self._watch = LayerWatch(self.model)
        run = Run(int(target), cancelled, progress, len(self._watch.blocks))
        run.check()
        # The bar shows at once, sized roughly (the path's scan refines it): importing captum
        # and building the baseline come first and took 5-14 s on a loaded machine, a wait
        # with nothing on screen but "computing".
        run.plan(GRAD_COST * (steps + 2) if ig else GRAD_COST)
        with self._watch.watching(run):
            embeds = self.embeddings(ids)
            if ig:
                start = self._baselines.build(baseline, ids, embeds)
                result = self._integrated_gradients(ids, run, embeds, steps, start, baseline, key)
            else:
                run.plan(GRAD_COST)
                result = self._gradient_method(ids, run, embeds, method)
        run.finish()
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
    def _forward(self, run: Run, embeds: torch.Tensor) -> torch.Tensor:
        """log p of run's target at each point of `embeds`: the function captum differentiates."""
        run.check()
        run.points(embeds.shape[0])
        out = self.log_p(embeds, run.target)
        run.last_value = float(out[-1].detach())
        return out

    def _gradient_method(self, ids, run: Run, embeds: torch.Tensor, method: str) -> Attribution:
        from captum.attr import InputXGradient, Saliency

        embeds.requires_grad_(True)
        forward = lambda x: self._forward(run, x)  # noqa: E731
        with torch.enable_grad():
            if method == "saliency":
                grads = Saliency(forward).attribute(embeds, abs=False)
                values = grads[0].norm(dim=-1)
            else:
                values = InputXGradient(forward).attribute(embeds)[0].sum(dim=-1)
        return Attribution(ids=ids, target=run.target, method=method,
                           values=values.detach().cpu().numpy().astype(np.float32),
                           log_p=run.last_value)

    def _integrated_gradients(self, ids, run: Run, embeds: torch.Tensor, steps: int,
                              baseline: torch.Tensor, name: str, key) -> Attribution:
        from captum.attr import Saliency

        delta = embeds - baseline  # the path is baseline + alpha * delta
        batch = max(1, self.batch_tokens // len(ids))
        kept = self._partial.get(key)
        if kept is not None:  # asked again after a cancel: the finished batches stand
            f_e, f_b, alphas, weights, avg, first = kept
            avg = avg.clone()
            run.done = GRAD_COST * first
            run.plan(GRAD_COST * len(alphas))
        else:
            f_e, f_b, alphas, weights = self._path(run, embeds, baseline, delta, steps, batch, name)
            avg, first = torch.zeros_like(embeds[0], dtype=torch.float64), 0
        with torch.enable_grad():
            for start in range(first, len(alphas), batch):
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
                try:
                    grads = Saliency(lambda x: self._forward(run, x) * scale[: x.shape[0]]).attribute(
                        points, abs=False)  # sqrt(alpha) * df/de at each point
                except Cancelled:
                    self._partial.put(key, (f_e, f_b, alphas, weights, avg, start))
                    raise
                avg += (w[:, None, None] * grads.detach().double()).sum(dim=0)
        self._partial.pop(key)
        values = (delta[0].double() * avg).sum(dim=-1)
        return Attribution(ids=ids, target=run.target, method="integrated_gradients",
                           values=values.detach().cpu().numpy().astype(np.float32),
                           log_p=float(f_e), log_p_baseline=float(f_b), n_steps=steps,
                           baseline=name)

    def _path(self, run: Run, embeds, baseline, delta, steps: int, batch: int, name: str):
        """(f(e), f(baseline), alphas, weights): the path's two ends and where its gradient
        points go (forward passes only)."""
        even = self.grid == "even" or (self.grid == "auto" and name != "zero")
        deepest = ig_path.deepest_decade(delta)
        scan_most = 0 if even else int(deepest / ig_path.SCAN_STEP)
        run.plan(2 + scan_most + GRAD_COST * steps)
        with torch.no_grad():  # the two ends of the path
            run.points(2)
            f_e, f_b = self.log_p(torch.cat([embeds, baseline]), run.target).tolist()
        if even:
            alphas, weights = ig_path.even(steps)
        else:
            with torch.no_grad():  # the forward-only scan toward the baseline

                def probe(alphas: list[float]) -> list[float]:
                    run.check()
                    run.points(len(alphas))
                    return self.log_p(torch.cat([baseline + a * delta for a in alphas]),
                                      run.target).tolist()

                decades, values = ig_path.scan(probe, f_e, f_b, deepest, batch)
            alphas, weights = ig_path.schedule(decades, values, steps)
        run.plan(run.done + GRAD_COST * len(alphas))
        return f_e, f_b, alphas, weights
