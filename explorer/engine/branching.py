"""Token trees on the local engine: the model work behind explorer.tree.search.

Cost rules (issue 10):
- The prompt is never recomputed. The tree works on its own copy of the prompt's KV
  cache (a fork), made once per tree; the prompt's cache in the engine's LRU is neither
  changed nor evicted, and nothing of the tree is put into that LRU.
- Every expansion reuses the cache of what was fed last: it crops the working cache to
  the longest common prefix with the path to expand and feeds only the rest, so a child
  right after its parent (or a sibling after a sibling) is one one-token decode step.
  Jumping to another branch feeds the few tokens of that branch in the same single pass.
- With batch > 1, siblings taken off the queue together (one parent) share one forward
  pass: the working cache, at the parent, is repeated to one row per sibling, then
  trimmed back to the first row. The tree's cache budget is therefore `batch` rows of at
  most prompt + max_depth positions, whatever the number of nodes.
- Only one expansion's logits ([rows <= batch, V]) exist at a time; they are reduced to
  an entropy and the few tokens above the threshold floor. Never an N x V tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch

from explorer.backend.errors import PromptTooLongError
from explorer.tree import TokenTree, TreeSettings, grow
from explorer.tree.search import Expansion

from . import metrics
from .kv import PromptKV, common_prefix


class CachedExpander:
    """Expands paths after `prompt` on one working cache, forked from the prompt's."""

    def __init__(self, model, prompt: Sequence[int], prompt_kv: PromptKV | None, *,
                 chunk: int = 256,
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
        if prompt_kv is not None and common_prefix(prompt_kv.ids, self.prompt) > 0:
            self.kv = prompt_kv.copy()  # the fork: the prompt's own cache stays as it is
            self.kv.tails = []
        else:
            # No cache for this prompt (evicted): the tree prefills its own, once.
            self.kv = PromptKV(cache=DynamicCache())

    # -- model calls ------------------------------------------------------------------
    def _forward(self, rows: list[list[int]]) -> torch.Tensor:
        """Feed `rows` (equal lengths) on the working cache; logits of the last position."""
        self.forward_passes += 1
        self.positions_fed += len(rows) * len(rows[0])
        out = self.model(input_ids=torch.tensor(rows, dtype=torch.long, device=self.device),
                         past_key_values=self.kv.cache, use_cache=True, return_dict=True,
                         logits_to_keep=1)
        return out.logits[:, -1, :]

    def _hold(self, seq: tuple[int, ...], *, leave: int) -> None:
        """Make the working cache hold seq[:len(seq) - leave] exactly; feeds what is
        missing (a prefill of the prompt only when the tree had no cache to fork)."""
        want = len(seq) - leave
        keep = min(common_prefix(self.kv.ids, seq), want)
        self.kv.crop_to(keep)
        for start in range(keep, want, self.chunk):
            end = min(start + self.chunk, want)
            self._forward([list(seq[start:end])])
            self.kv.ids = seq[:end]

    def _logits_after(self, seq: tuple[int, ...]) -> torch.Tensor:
        """[1, V] logits after `seq`; feeds everything past the common prefix at once."""
        keep = min(common_prefix(self.kv.ids, seq), len(seq) - 1)
        if len(seq) - keep > self.chunk:
            self._hold(seq, leave=1)
            keep = len(seq) - 1
        self.kv.crop_to(keep)
        logits = self._forward([list(seq[keep:])])
        self.kv.ids = seq
        return logits

    def _siblings_logits(self, parent: tuple[int, ...], tokens: list[int]) -> torch.Tensor:
        """[B, V] logits after parent + (t,) for each t, in one batched pass."""
        self._hold(parent, leave=0)
        self.kv.cache.batch_repeat_interleave(len(tokens))
        try:
            logits = self._forward([[t] for t in tokens])
        finally:
            # Back to one row: the first sibling's, so its children cost one step next.
            self.kv.cache.batch_select_indices(torch.tensor([0], device=self.device))
        self.kv.ids = parent + (tokens[0],)
        return logits

    # -- the Expander interface ---------------------------------------------------------
    def expand(self, paths: Sequence[tuple[int, ...]], floor: float, most: int) -> list[Expansion]:
        out: list[Expansion] = []
        with torch.inference_mode():
            i = 0
            while i < len(paths):
                j = i + 1
                if paths[i]:  # gather the siblings that follow (same parent, same length)
                    while j < len(paths) and paths[j][:-1] == paths[i][:-1] and paths[j]:
                        j += 1
                group = paths[i:j]
                if len(group) == 1:
                    logits = self._logits_after(self.prompt + tuple(group[0]))
                else:
                    logits = self._siblings_logits(self.prompt + tuple(group[0][:-1]),
                                                   [p[-1] for p in group])
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


def eos_ids(model, tokenizer) -> frozenset[int]:
    """End-of-sequence ids from the tokenizer and the generation config (int or list)."""
    found: set[int] = set()
    for value in (getattr(tokenizer, "eos_token_id", None),
                  getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, (list, tuple)):
            found.update(int(v) for v in value)
    return frozenset(found)


def grow_tree(model, prompt: Sequence[int], prompt_kv: PromptKV | None, settings: TreeSettings, *,
              token_text: Callable[[int], str], decode: Callable[[Sequence[int]], str],
              eos: Collection[int], max_context: int | None, chunk: int = 256,
              few_threads: Callable[[], AbstractContextManager] = nullcontext,
              progress: Callable[[int, int], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> TokenTree:
    prompt = tuple(int(i) for i in prompt)
    if max_context is not None and len(prompt) >= max_context:
        raise PromptTooLongError(
            f"The prompt already fills the model's context of {max_context} tokens, "
            "so no tree can grow after it.")
    expander = CachedExpander(model, prompt, prompt_kv, chunk=chunk, few_threads=few_threads)
    try:
        return grow(expander, prompt, settings, token_text=token_text, decode=decode,
                    eos_ids=eos, max_context=max_context, progress=progress, cancelled=cancelled)
    finally:
        del expander.kv  # the tree's cache budget is released with the tree's growth
