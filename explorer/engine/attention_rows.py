"""The last query's attention row for every (layer, head), without eager attention.

HF's eager attention materialises every weight with several small ops per layer; on a
busy CPU each op costs a thread-pool wake-up, which tripled the decode step. Instead we
register a thin wrapper around the model's own fast attention (sdpa, flash...) that keeps
the last query row (post-rope) and the layer's keys; the weights of that single row are
recomputed afterwards: softmax(q·Kᵀ·scaling [soft-capped] + mask). Models whose fast path
is eager (e.g. Gemma 2, for its attention soft-cap) keep eager + output_attentions, and so
do models that compute attention inline instead of through transformers' attention
interface (Falcon): `for_model` finds them with a one-token probe.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import torch

_sink: ContextVar[list | None] = ContextVar("explorer_attention_rows", default=None)


def install(base: str) -> str | None:
    """Register 'explorer_<base>' wrapping the attention function `base`; return its name,
    or None when `base` is not a shared function (eager lives in each modeling file)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if base not in ALL_ATTENTION_FUNCTIONS or base not in ALL_MASK_ATTENTION_FUNCTIONS:
        return None
    name = f"explorer_{base}"
    if name in ALL_ATTENTION_FUNCTIONS:
        return name
    base_fn = ALL_ATTENTION_FUNCTIONS[base]

    def attention(module, query, key, value, attention_mask, **kwargs):
        sink = _sink.get()
        if sink is not None:
            sink.append((query[:, :, -1, :], key, attention_mask, kwargs.get("scaling"),
                         kwargs.get("softcap")))
        return base_fn(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(name, attention)
    AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS[base])
    return name


def use_impl(model, impl: str) -> None:
    """Switch the model's attention implementation for the next forward passes.

    Models that compute attention inline (Falcon) refuse set_attn_implementation but read
    the config on every call; between eager and sdpa their config is set directly. Their
    sdpa path with output_attentions adds a boolean mask to the scores (wrong numbers), so
    their attention weights must come from a real eager pass.
    """
    current = getattr(model.config, "_attn_implementation", None)
    if current == impl:
        return
    model.set_attn_implementation(impl)
    if model.config._attn_implementation != impl and {current, impl} <= {"eager", "sdpa"}:
        model.config._attn_implementation = impl


def for_model(model, base: str, device) -> str | None:
    """install(base), kept only if `model` really calls it: one token through a scratch
    cache must report a row. Falcon never calls the interface, so it gets None: eager."""
    from transformers import DynamicCache

    name = install(base)
    if name is None:
        return None
    before = getattr(model.config, "_attn_implementation", None) or base
    try:
        use_impl(model, name)
        with torch.inference_mode(), capturing() as captured:
            model(input_ids=torch.zeros((1, 1), dtype=torch.long, device=device),
                  past_key_values=DynamicCache(), use_cache=True)
    except Exception:  # a model that cannot run the wrapped name cannot use it
        captured = []
    finally:
        use_impl(model, before)
    return name if captured else None


@contextmanager
def capturing():
    """Collect (query row, keys, mask, scaling, softcap) per layer during one forward."""
    token = _sink.set([])
    try:
        yield _sink.get()
    finally:
        _sink.reset(token)


def last_rows(captured: list) -> torch.Tensor:
    """[layers, heads, keys] fp32 attention weights of the last query position."""
    rows = []
    for query, key, mask, scaling, softcap in captured:
        heads, dim = query.shape[1], query.shape[-1]
        kv_heads = key.shape[1]
        scale = dim**-0.5 if scaling is None else scaling
        # Query head h reads key head h // (heads / kv_heads), as repeat_kv does.
        grouped = query[0].float().reshape(kv_heads, heads // kv_heads, dim)
        scores = (grouped @ key[0].float().transpose(-1, -2)).reshape(heads, -1) * scale
        if softcap:
            scores = torch.tanh(scores / softcap) * softcap
        if mask is not None:
            row = mask[0, :, -1, : scores.shape[-1]]  # [1 or heads, keys]
            if row.dtype == torch.bool:
                scores = scores.masked_fill(~row, float("-inf"))
            else:
                scores = scores + row.float()
        rows.append(torch.softmax(scores, dim=-1))
    # A split model leaves each layer's row on the device that layer ran on.
    return torch.stack([row.to(rows[0].device) for row in rows])
