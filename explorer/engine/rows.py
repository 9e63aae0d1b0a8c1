"""Full next-token distributions of a whole prompt, a block of rows at a time
(Feature.ROWS): what a comparison of two models needs at every position.

One chunked pass on a scratch KV cache, as the prompt load and tracked tokens do: each
chunk's logits ([chunk, V], never [N, V]) become fp32 log-prob blocks of at most
BLOCK_ROWS rows, handed out one by one and dropped by the caller. A generator, so two
models can be walked in lockstep (explorer.compare) with one chunk of each alive at once.

Row i is the distribution *after* position i (predicting position i+1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from explorer.backend.errors import Cancelled

from . import metrics
from .placement import input_device

# Rows per block: bounds the fp32 [rows, V] copy the caller holds.
BLOCK_ROWS = 64


def logprob_blocks(model, ids: Sequence[int], *, chunk: int = 256, lock=None,
                   progress: Callable[[int, int], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first row, float32 [r, V] log-probs on the CPU) for rows 0..len(ids)-1.

    lock: held while the model runs (the engine's), never across a yield, so another
    model's pass can run between this one's chunks. progress(done, total) counts
    positions; cancelled() is polled between chunks and raises Cancelled."""
    from contextlib import nullcontext

    from transformers import DynamicCache

    ids = [int(i) for i in ids]
    if not ids:
        raise ValueError("a prompt needs at least one token")
    chunk = max(1, int(chunk))
    device = input_device(model)
    cache = DynamicCache()
    n = len(ids)
    for start in range(0, n, chunk):
        if cancelled is not None and cancelled():
            raise Cancelled("Comparing the models was cancelled.")
        end = min(start + chunk, n)
        with lock or nullcontext(), torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids[start:end]], device=device),
                           past_key_values=cache, use_cache=True, return_dict=True).logits[0]
        for a in range(0, end - start, BLOCK_ROWS):
            with torch.inference_mode():
                block = metrics.log_probs(logits[a:a + BLOCK_ROWS]).to("cpu").numpy()
            yield start + a, block
        del logits
        if progress is not None:
            progress(end, n)
