"""The raw logits row before any earlier position of a prompt (issue 23: look back), for
the table at a past position and p_final there.

The records already hold every position's p_base numbers (top-k, the token's log-prob,
rank and entropy); what they cannot hold is p_final under whatever sampler settings the
user picks, which needs the whole row. A row is rebuilt on demand in one decode step: the
token before `index` is run on a *view* of the prompt's own KV cache cut to the positions
before it (DynamicCache layers sliced, no copy; the step's own concatenation builds new
tensors, so the prompt's cache is left exactly as it was). Rows rebuilt, like the ones
each step keeps, sit in the sampler side's LRU, so going back and forth costs nothing.
"""

from __future__ import annotations

import copy

import torch

from explorer.prefix import common_prefix

from .kv import PromptKV


def cut_view(kv: PromptKV, length: int) -> PromptKV:
    """A cache holding kv's first `length` positions, sharing its tensors (slices)."""
    from transformers import DynamicCache

    view = DynamicCache()
    view.layers = [copy.copy(layer) for layer in kv.cache.layers]  # the tensors are shared
    drop = len(kv.ids) - length
    if drop > 0:
        view.crop(-drop)  # slices each layer's keys and values: views, no copy
    return PromptKV(cache=view, ids=kv.ids[:length])


def logits_before(engine, key, index: int) -> torch.Tensor:
    """fp32 CPU [V]: the model's raw logits after ids[:index] of prompt `key`, the
    distribution that predicted token `index` (1 <= index <= n; n: after the last one).
    Call under the engine's lock."""
    ids = engine._store[key].ids
    if not 1 <= index <= len(ids):
        raise ValueError(f"position {index} is outside 1..{len(ids)}")
    prefix = ids[:index]
    row = engine._sampler.row(prefix)
    if row is not None:
        return row
    engine._runner.use_fast()
    own = engine._store.peek_kv(key)
    with torch.inference_mode():
        if own is not None and common_prefix(own.ids, prefix) >= index - 1:
            kv = cut_view(own, index - 1)
        else:  # the prompt's cache was evicted: its prefix runs again, in a cache of its own
            from transformers import DynamicCache

            kv = PromptKV(cache=DynamicCache())
            engine._runner.prefill(prefix, kv, index - 1, lambda pos, out: None)
        out = engine._runner.forward(prefix[index - 1:], kv)
        row = out.logits[-1].detach().to("cpu", torch.float32, copy=True)
    engine._sampler.put_row(prefix, row)
    return row
