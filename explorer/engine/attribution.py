"""Attribution: how much each prompt token drove the prediction of one candidate.

For a target token t after the last position, with e_i the input embedding of position i
(the rows the model's own embedding layer returns) and f(e) = log p_base(t | e) in fp32:

- saliency:              ||df/de_i||_2
- input x gradient:      sum_d e_{i,d} * df/de_{i,d}
- integrated gradients:  sum_d (e_{i,d} - b_{i,d}) * integral_0^1 df/de_{i,d}(b + a(e - b)) da,
                         baseline b = mean-keep-first by default (ig_baseline.py has the
                         others), the integral by the trapezoid over points that start
                         at n_steps + 1 and are added where the scores do not add up
                         (ig_run.py); from zero, points
                         placed in ln(alpha) where f moves (ig_path.py says why).
- attention:             the attention weights from the last position (the one that
                         predicts t) to each position, averaged over every layer and head,
                         from one forward pass with eager attention (target-independent).

captum (Meta's attribution library) computes saliency and input x gradient; integrated
gradients calls torch.autograd.grad itself on batches of points (ig_run.py). The
embeddings are an fp32 leaf that is cast to the model's dtype on the way in, and log p
comes out of an fp32 log-softmax, so a bf16 model still yields fp32 gradients at both
ends. Each forward is the whole prompt without a KV cache (gradients need the graph); the
weights' own gradients are switched off for the request (only the input's are needed);
integrated gradients runs its points in batches of about `batch_tokens` positions, so
memory stays bounded on long prompts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np
import torch

from explorer.backend.errors import Cancelled, Unavailable
from explorer.backend.types import ATTRIBUTION_METHODS, DEFAULT_BASELINE, Attribution

from . import attention_rows, ig_path, placement
from .attribution_run import BACKWARD, LayerWatch, Run, frozen_weights
from .ig_baseline import Baselines
from .ig_run import MAX_STEPS, Integrand, Path, adaptive, ends, log_rule
from explorer.lru import LRU

DEFAULT_STEPS = 32

# Positions per integrated-gradients batch (points x prompt length): bounds activation
# memory (SmolLM2-135M in fp32 keeps about 0.4 MB of activations per position for the
# backward pass: 512 positions stay under 1 GB; docs/benchmarks.md#attribution).
BATCH_TOKENS = 512
CACHE_ENTRIES = 64
# Integrated-gradients requests cancelled mid-way whose finished gradient batches are kept,
# so the same request asked again (after a key the model had to serve first) resumes.
PARTIAL_ENTRIES = 4
GRAD_COST = 1.0 + BACKWARD  # a gradient point in forward-point units (attribution_run.py)
# Where the gradient points go: "log" = the scan and log-spaced panels of ig_path.py,
# "even" = on [0, 1], Clenshaw-Curtis refined where needed (ig_run.py), "auto" = log from the zero
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
                  n_steps: int = DEFAULT_STEPS, baseline: str = DEFAULT_BASELINE,
                  max_steps: int = MAX_STEPS,
                  progress: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None) -> Attribution:
        """Scores per position of `ids` for log p_base(target) after the last position
        (`n_steps`, `max_steps` and `baseline` matter to integrated gradients only: its
        path starts at n_steps steps and is refined until the scores add up to within 2%
        or it has max_steps). Raises Unavailable (one sentence) or Cancelled (nothing cached then)."""
        if method not in ATTRIBUTION_METHODS:
            raise ValueError(f"unknown attribution method {method!r}; use one of {ATTRIBUTION_METHODS}")
        if not self.available:
            raise Unavailable(self.unavailable_reason())
        ids = tuple(int(i) for i in ids)
        if not ids:
            raise ValueError("attribution needs a prompt of at least one token")
        ig = method == "integrated_gradients"
        steps = max(1, int(n_steps)) if ig else None
        key = (ids, int(target), method, steps, baseline if ig else None, max_steps if ig else None)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if self._watch is None:
            self._watch = LayerWatch(self.model)
        run = Run(int(target), cancelled, progress, len(self._watch.blocks))
        run.check()
        # The bar shows at once, sized roughly (the path refines it): importing captum
        # and building the baseline come first and took 5-14 s on a loaded machine, a wait
        # with nothing on screen but "computing".
        run.plan(GRAD_COST * (steps + 1) if ig else GRAD_COST)
        with self._watch.watching(run), frozen_weights(self.model):
            embeds = self.embeddings(ids)
            if ig:
                start = self._baselines.build(baseline, ids, embeds)
                result = self._integrated_gradients(ids, run, embeds, steps, max_steps, start,
                                                    baseline, key)
            elif method == "attention":
                run.plan(1.0)
                result = self._attention(ids, run, embeds)
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

    def _attention(self, ids, run: Run, embeds: torch.Tensor) -> Attribution:
        """The last position's attention weights over every position, averaged over every
        layer and head, from one forward pass with the model's eager attention (the
        weights as transformers' output_attentions gives them)."""
        before = getattr(self.model.config, "_attn_implementation", None) or "eager"
        attention_rows.use_impl(self.model, "eager")
        try:
            run.points(1)
            with torch.no_grad():
                out = self.model(inputs_embeds=embeds.to(self._embed.weight.dtype), use_cache=False,
                                 output_attentions=True, return_dict=True, **self._keep_last)
        finally:
            attention_rows.use_impl(self.model, before)
        rows = [a[0, :, -1, :].float() for a in out.attentions if a is not None]
        if len(rows) != len(out.attentions) or not rows:
            raise Unavailable(f"{self.name} does not return its attention weights, so the "
                              "attention method is unavailable.")
        values = torch.stack([r.to(rows[0].device) for r in rows]).mean(dim=(0, 1))
        log_p = torch.log_softmax(out.logits[0, -1].float(), dim=-1)[run.target]
        return Attribution(ids=ids, target=run.target, method="attention",
                           values=values.cpu().numpy().astype(np.float32), log_p=float(log_p))

    def _integrated_gradients(self, ids, run: Run, embeds: torch.Tensor, steps: int,
                              max_steps: int, baseline: torch.Tensor, name: str, key) -> Attribution:
        log_grid = self.grid == "log" or (self.grid == "auto" and name == "zero")
        path = Path(lambda x: self._forward(run, x), embeds, baseline,
                    self.batch_tokens // len(ids), log_grid)
        memo = self._partial.pop(key) or Integrand()  # asked again after a cancel: kept
        plan = lambda missing: run.plan(run.done + GRAD_COST * missing)  # noqa: E731
        try:
            if log_grid:
                if memo.ends is None:
                    with torch.no_grad():  # the two ends of the path
                        run.points(2)
                        memo.ends = tuple(self.log_p(torch.cat([embeds, baseline]), run.target).tolist())
                probe = lambda: self._scan(run, path, memo.ends)  # noqa: E731
                # From zero the log grid's points are not nested (each count its own), so
                # refining would pay for every count again: it keeps n_steps and reports how
                # complete it is.
                keys, alphas, weights = log_rule(path, memo, steps, probe)
                plan(path.missing(memo, keys))
                path.fill(memo, keys, alphas)
                unresolved = None  # Gauss-Legendre panels: no per-interval check
            else:
                alphas, weights, keys, unresolved = adaptive(path, memo, steps, max(int(max_steps), steps), plan)
        except Cancelled:
            self._partial.put(key, memo)
            raise
        values = np.einsum("k,kn->n", weights, np.stack([memo.s[k] for k in keys]))
        f_e, f_b = ends(path, memo)
        return Attribution(ids=ids, target=run.target, method="integrated_gradients",
                           values=values.astype(np.float32), log_p=float(f_e),
                           log_p_baseline=float(f_b), baseline=name,
                           n_steps=steps if log_grid else len(alphas) - 1,
                           points=np.asarray(alphas, dtype=np.float64),
                           weights=np.asarray(weights, dtype=np.float64), unresolved=unresolved)

    def _scan(self, run: Run, path: Path, ends: tuple[float, float]):
        """The log grid's forward-only scan toward the baseline (ig_path.scan)."""
        deepest = ig_path.deepest_decade(path.delta)
        run.plan(run.done + int(deepest / ig_path.SCAN_STEP))

        def probe(alphas: list[float]) -> list[float]:
            run.check()
            run.points(len(alphas))
            with torch.no_grad():
                return self.log_p(path.points(alphas), run.target).tolist()

        return ig_path.scan(probe, ends[0], ends[1], deepest, path.batch)
