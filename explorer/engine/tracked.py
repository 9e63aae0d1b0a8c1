"""Tracked tokens: chosen token ids followed through a whole prompt, exact at any rank.

One chunked pass over the prompt on a scratch KV cache: each chunk's logits ([chunk, V],
never [N, V]) are reduced a few rows at a time to the tracked tokens' log-probs and ranks,
then dropped. With the lens parts, the last chunk also returns hidden states and the
per-layer probability of each tracked token after the last position is read through the
logit lens (lens.py), so pinning a token costs one pass in all.

Position convention: row i is the distribution *after* position i (predicting position
i+1), so the last row is the current next-token distribution (the table's p_base).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from explorer.backend.errors import Cancelled
from explorer.backend.types import TrackedSeries

from . import metrics
from .lens import make_point, point_probs, stack_layers
from .placement import input_device
from .parts import ModelParts

# Rows of log-probs computed at once from a chunk's logits: bounds the fp32 temporaries.
REDUCE_ROWS = 64


def track(model, ids: Sequence[int], token_ids: Sequence[int], *, chunk: int = 256,
          parts: ModelParts | None = None,
          progress: Callable[[int, int], None] | None = None,
          cancelled: Callable[[], bool] | None = None) -> TrackedSeries:
    """p_base of each tracked token at every position of `ids`, in one chunked pass.

    model: a transformers causal LM (its current attention implementation is used);
    parts: pass the resolved lens parts to also get per-layer probabilities at the last
    position; progress(done, total): positions done, after each chunk; cancelled: polled
    between chunks, raises Cancelled when it turns true.
    """
    from transformers import DynamicCache

    ids = [int(i) for i in ids]
    targets = [int(t) for t in token_ids]
    if not ids:
        raise ValueError("tracking needs a prompt of at least one token")
    chunk = max(1, int(chunk))
    device = input_device(model)
    n, k = len(ids), len(targets)
    logprobs = np.empty((n, k), dtype=np.float32)
    ranks = np.empty((n, k), dtype=np.int64)
    layer_probs = None
    target_t = torch.tensor(targets, dtype=torch.long, device=device)
    cache = DynamicCache()
    with torch.inference_mode():
        for start in range(0, n, chunk):
            if cancelled is not None and cancelled():
                raise Cancelled("Tracking the tokens was cancelled.")
            end = min(start + chunk, n)
            last = end == n
            out = model(input_ids=torch.tensor([ids[start:end]], device=device),
                        past_key_values=cache, use_cache=True,
                        output_hidden_states=last and parts is not None, return_dict=True)
            logits = out.logits[0]
            for a in range(0, end - start, REDUCE_ROWS):
                lp = metrics.log_probs(logits[a:a + REDUCE_ROWS])
                rows = slice(start + a, start + a + lp.shape[0])
                logprobs[rows] = lp[:, target_t].cpu().numpy()
                for j in range(k):  # one [rows, V] comparison per token, never [rows, k, V]
                    ranks[rows, j] = metrics.rank_of(lp, target_t[j].expand(lp.shape[0])).cpu().numpy()
                del lp
            if last and parts is not None:
                final = metrics.log_probs(logits[-1])
                layer_hidden = stack_layers(out.hidden_states, -1, parts.n_layers)
                point = make_point(parts, layer_hidden, final)
                layer_probs = point_probs(parts, point, targets).cpu().numpy().astype(np.float32)
            del out, logits
            if progress is not None:
                progress(end, n)
    return TrackedSeries(tuple(targets), logprobs, ranks, layer_probs)
