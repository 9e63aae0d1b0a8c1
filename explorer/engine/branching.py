"""Token trees on the local engine: the model work behind explorer.tree.search.

Cost rules (issue 10):
- The prompt is never recomputed: the tree starts from a fork of the prompt's KV cache
  (the prompt's cache in the engine's LRU is neither changed nor evicted, and nothing of
  the tree goes into that LRU).
- Each expanded path keeps a *fork* of its cache (a snapshot). A fork is cheap: a
  DynamicCache layer never changes its tensors in place (update concatenates into new
  tensors, crop slices), so a fork shares the parent's tensors and a child's decode step
  writes new ones. Expanding a path whose parent has a snapshot is one one-token decode
  step; one whose parent's snapshot was evicted forks the nearest kept ancestor and feeds
  the few missing tokens in the same single pass.
- The snapshots are the tree's own cache budget (TreeSettings.cache_mib, least recently
  used evicted first; the prompt's fork is pinned), so memory is flat in the number of
  nodes apart from that budget.
- With batch > 1, siblings (one parent) share one forward pass: the parent's fork is
  repeated to one row per sibling; each row's snapshot is taken lazily from that batch.
- Only one expansion's logits ([rows <= batch, V]) exist at a time; they are reduced to
  an entropy and the few tokens above the threshold floor. Never an N x V tensor.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch

from explorer.backend.errors import PromptTooLongError
from explorer.context_limit import context_error
from explorer.tree import TokenTree, TreeSettings, grow
from explorer.tree.search import Expansion
from explorer.lru import LRU
from explorer.prefix import common_prefix

from . import metrics
from .kv import PromptKV

Path = tuple[int, ...]


def fork(cache):
    """A cache sharing `cache`'s tensors that can grow or be cropped independently."""
    new = copy.copy(cache)
    new.layers = [copy.copy(layer) for layer in cache.layers]
    return new


def cache_bytes(cache) -> int:
    total = 0
    for layer in cache.layers:
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(t, torch.Tensor):
                total += t.nelement() * t.element_size()
    return total


class Snapshots:
    """path -> (cache, batch row or None), least recently used evicted past a byte budget.
    Rows of one batched cache are counted once each as one row's share."""

    def __init__(self, budget_bytes: int):
        self._items: LRU[Path, tuple[object, int | None, int]] = LRU(
            max(0, int(budget_bytes)), weigh=lambda entry: entry[2])
        self._pinned: dict[Path, tuple[object, int | None, int]] = {}

    @property
    def used(self) -> int:
        return self._items.used

    def pin(self, path: Path, cache) -> None:
        self._pinned[path] = (cache, None, 0)

    def put(self, path: Path, cache, row: int | None, size: int) -> None:
        self._items.put(path, (cache, row, size))

    def nearest(self, path: Path) -> tuple[int, object, int | None]:
        """(length of the longest kept prefix of `path`, its cache, its row)."""
        for n in range(len(path), -1, -1):
            entry = self._pinned.get(path[:n]) or self._items.get(path[:n])  # get: a use
            if entry is not None:
                return n, entry[0], entry[1]
        raise KeyError("the prompt's fork is always kept")


class CachedExpander:
    """Expands paths after `prompt` from snapshots of their ancestors' caches."""

    def __init__(self, model, prompt: Sequence[int], prompt_kv: PromptKV | None, *,
                 cache_mib: float = 256, chunk: int = 256,
                 few_threads: Callable[[], AbstractContextManager] = nullcontext):
        from transformers import DynamicCache

        self.model = model
        self.device = next(model.parameters()).device
        self.prompt = tuple(int(i) for i in prompt)
        self.chunk = max(1, int(chunk))
        # The reductions after each pass are small: on a busy CPU, one thread avoids a
        # pool wake-up per op (the engine's Runner.few_threads).
        self.few_threads = few_threads
        self.forward_passes = 0
        self.positions_fed = 0
        self.snapshots = Snapshots(int(cache_mib * 2**20))
        # The base: the prompt minus its last token, which the root expansion feeds.
        base, held = DynamicCache(), 0
        if prompt_kv is not None:
            held = min(common_prefix(prompt_kv.ids, self.prompt), len(self.prompt) - 1)
        if held > 0:
            base = fork(prompt_kv.cache)
            drop = len(prompt_kv.ids) - held
            if drop > 0:
                base.crop(-drop)
        with torch.inference_mode():
            for start in range(held, len(self.prompt) - 1, self.chunk):
                # No cache to fork (evicted): the tree prefills its own copy, once.
                end = min(start + self.chunk, len(self.prompt) - 1)
                self._forward(base, [list(self.prompt[start:end])])
        # forward_passes counts expansions only (the tree's own work, the same whether or
        # not the prompt's cache was still held); a prefill here is counted apart.
        self.prefill_passes, self.forward_passes = self.forward_passes, 0
        self._base = base

    # -- model calls ------------------------------------------------------------------
    def _forward(self, cache, rows: list[list[int]]) -> torch.Tensor:
        """Feed `rows` (equal lengths) on `cache`; logits of each row's last position."""
        self.forward_passes += 1
        self.positions_fed += len(rows) * len(rows[0])
        out = self.model(input_ids=torch.tensor(rows, dtype=torch.long, device=self.device),
                         past_key_values=cache, use_cache=True, return_dict=True,
                         logits_to_keep=1)
        return out.logits[:, -1, :]

    def _fork_towards(self, target: Path) -> tuple[object, Path]:
        """A fork of the longest kept snapshot along `target` (the prompt's at least),
        and the tokens of `target` it still lacks."""
        n, cache, row = self.snapshots.nearest(target)
        cache = fork(cache)
        if row is not None:  # one row of a batched pass
            cache.batch_select_indices(torch.tensor([row], device=self.device))
        return cache, target[n:]

    def _keep(self, path: Path, cache, row: int | None, rows: int) -> None:
        size = cache_bytes(cache) // max(1, rows)
        if not path:
            self.snapshots.pin((), cache)
        else:
            self.snapshots.put(path, cache, row, size)

    # -- the Expander interface ---------------------------------------------------------
    def expand(self, paths: Sequence[Path], floor: float, most: int) -> list[Expansion]:
        out: list[Expansion] = []
        with torch.inference_mode():
            i = 0
            while i < len(paths):
                j = i + 1
                if paths[i]:  # gather the siblings that follow (same parent)
                    while j < len(paths) and paths[j] and paths[j][:-1] == paths[i][:-1]:
                        j += 1
                group = [tuple(p) for p in paths[i:j]]
                if len(group) == 1:
                    path = group[0]
                    if path:
                        cache, rest = self._fork_towards(path[:-1])
                        rest = rest + path[-1:]
                    else:  # the prompt itself: its last token on the base
                        cache, rest = fork(self._base), self.prompt[-1:]
                    logits = self._forward(cache, [list(rest)])
                    self._keep(path, cache, None, 1)
                else:
                    parent = group[0][:-1]
                    cache, rest = self._fork_towards(parent)
                    if rest:  # bring the parent's fork up to the parent first
                        self._forward(cache, [list(rest)])
                    cache.batch_repeat_interleave(len(group))
                    logits = self._forward(cache, [[p[-1]] for p in group])
                    for r, path in enumerate(group):
                        self._keep(path, cache, r, len(group))
                with self.few_threads():
                    out.extend(reduce_rows(logits, floor, most))
                del logits
                i = j
        return out


def reduce_rows(logits: torch.Tensor, floor: float, most: int) -> list[Expansion]:
    """Each row's entropy and its tokens with p >= floor (at most `most`, at least one),
    most likely first. fp32 throughout, whatever the model's dtype."""
    lp = metrics.log_probs(logits)
    entropy = metrics.entropy(lp).tolist()
    log_floor = math.log(floor) if floor > 0 else -math.inf
    counts = (lp >= log_floor).sum(dim=-1).tolist()
    k = max(1, min(max(counts), max(1, most), lp.shape[-1]))
    top_lp, top_ids = torch.topk(lp, k, dim=-1)
    top_lp, top_ids = top_lp.tolist(), top_ids.tolist()
    rows = []
    for r in range(lp.shape[0]):
        n = max(1, min(counts[r], most))
        rows.append(Expansion(entropy[r], tuple(top_ids[r][:n]), tuple(top_lp[r][:n])))
    return rows


def grow_tree(model, prompt: Sequence[int], prompt_kv: PromptKV | None, settings: TreeSettings, *,
              token_text: Callable[[int], str], decode: Callable[[Sequence[int]], str],
              eos: Collection[int], max_context: int | None, name: str = "the model", chunk: int = 256,
              few_threads: Callable[[], AbstractContextManager] = nullcontext,
              progress: Callable[[int, int], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> TokenTree:
    prompt = tuple(int(i) for i in prompt)
    if why := context_error(len(prompt), max_context, name, adding=1):  # room for one token
        raise PromptTooLongError(why)
    expander = CachedExpander(model, prompt, prompt_kv, cache_mib=settings.cache_mib,
                              chunk=chunk, few_threads=few_threads)
    try:
        return grow(expander, prompt, settings, token_text=token_text, decode=decode,
                    eos_ids=eos, max_context=max_context, progress=progress, cancelled=cancelled)
    finally:
        del expander.snapshots, expander._base  # the tree's cache budget goes with it
