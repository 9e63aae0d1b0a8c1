"""Top-p (nucleus) filtering equal to transformers' TopPLogitsWarper, without its full sort
of the row on the common path.

TopPLogitsWarper sorts the whole row (torch.sort: ~20 ms for 152k tokens on one CPU
thread), takes the softmax of the sorted logits, accumulates it from the smallest, and
removes the tokens whose accumulated probability is <= 1 - top_p, always keeping the
largest. Which tokens that removes depends only on the sorted *values* (the softmax and the
cumulative sum of the same values in the same order give the same bits) plus, when the
cut falls inside a run of equal logits, on torch.sort's order of the tied tokens (which is
not stable). So: sort the values alone with numpy (a vectorised sort, ~0.3 ms for 152k),
run the warper's own softmax and cumsum on them, and remove every token below the first
kept value. When the cut falls between equal values, the warper itself decides.
"""

from __future__ import annotations

import numpy as np


def top_p_filter(scores, top_p: float, filter_value: float = float("-inf")):
    """scores: [1, V] float tensor (CPU); returns a new tensor, equal to
    TopPLogitsWarper(top_p)(input_ids, scores) with min_tokens_to_keep=1."""
    import torch

    if scores.device.type != "cpu" or scores.shape[0] != 1:
        return _warper(scores, top_p, filter_value)
    values = torch.from_numpy(np.sort(scores[0].numpy()))[None, :]
    if values.dtype != scores.dtype:
        return _warper(scores, top_p, filter_value)
    cumulative = values.softmax(dim=-1).cumsum(dim=-1)
    # The warper removes sorted positions with cumulative <= 1 - top_p, never the last one;
    # the cumulative sum is non-decreasing, so that is a prefix of `removed` positions.
    removed = min(int((cumulative <= (1 - top_p)).sum()), values.shape[-1] - 1)
    if removed == 0:
        return scores.clone()
    first_kept = values[0, removed]
    if values[0, removed - 1] == first_kept:
        return _warper(scores, top_p, filter_value)  # the cut splits equal logits
    return scores.masked_fill(scores < first_kept, filter_value)


def _warper(scores, top_p: float, filter_value: float):
    from transformers import TopPLogitsWarper

    return TopPLogitsWarper(top_p=top_p, filter_value=filter_value)(None, scores)
