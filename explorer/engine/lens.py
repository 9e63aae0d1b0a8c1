"""Logit lens: what each layer's residual stream would predict if it were the last.

Layer numbering (fixed here, used everywhere): row l for l = 0..L-1 is the residual stream
*entering* decoder layer l, i.e. HF `hidden_states[l]` (row 0 = the embeddings), read
through the model's final norm and lm_head, then whatever the model's forward applies to
lm_head's output (Cohere's logit scale, Granite's divisor, Gemma's soft-cap). Row L is the
model's own output distribution. HF's `hidden_states[L]` is already normed, so it is never normed again; the
output of the last layer before the final norm is exactly what row L reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .metrics import log_probs
from .parts import ModelParts

# Rows of lm_head output computed at once: bounds the [rows, V] temporaries.
ROWS_PER_PASS = 64


@dataclass(frozen=True)
class LensPoint:
    """Enough to answer p^l[t] for any token t after one position, without keeping [L, V]."""

    normed: torch.Tensor  # [L, H] final_norm(h_l), model dtype
    lse: torch.Tensor  # [L] fp32 logsumexp of each layer's capped logits
    final_logprobs: torch.Tensor  # [V] fp32, the model's own distribution (row L)


def lens_logits(parts: ModelParts, hidden: torch.Tensor) -> torch.Tensor:
    """lm_head(final_norm(h)), scaled and soft-capped as the model's forward does, in fp32,
    for hidden states [..., H]."""
    return parts.finish(parts.lm_head(parts.final_norm(hidden)))


def make_point(parts: ModelParts, layer_hidden: torch.Tensor, final_logprobs: torch.Tensor) -> LensPoint:
    """layer_hidden: [L, H], the residual stream entering each layer at one position."""
    normed = parts.final_norm(layer_hidden)
    logits = parts.finish(parts.lm_head(normed))
    return LensPoint(normed=normed, lse=torch.logsumexp(logits, dim=-1), final_logprobs=final_logprobs)


def point_probs(parts: ModelParts, point: LensPoint, token_ids: list[int]) -> torch.Tensor:
    """[L+1, k] fp32: p^l[t] for each given token; only k columns of lm_head are evaluated
    (all of them when accelerate keeps the head's weights offloaded between passes)."""
    head = parts.lm_head
    weight = head.weight
    if weight.device.type == "meta":  # offloaded: only its forward brings the weights in
        logits = head(point.normed)
        ids = torch.tensor(token_ids, dtype=torch.long, device=logits.device)
        logits = logits[:, ids]
    else:
        ids = torch.tensor(token_ids, dtype=torch.long, device=weight.device)
        logits = point.normed.to(weight.device) @ weight[ids].T
        if getattr(head, "bias", None) is not None:
            logits = logits + head.bias[ids]
    layers = (parts.finish(logits) - point.lse.to(logits.device)[:, None]).exp()
    final = point.final_logprobs[ids.to(point.final_logprobs.device)].exp()[None, :]
    return torch.cat([layers.cpu(), final.cpu()], dim=0)


def stack_layers(hidden_states, position: int, n_layers: int) -> torch.Tensor:
    """[L, H]: row l = HF hidden_states[l][0, position], gathered on one device (a split
    model leaves each layer's output where that layer ran)."""
    device = hidden_states[0].device
    return torch.stack([hidden_states[l][0, position].to(device) for l in range(n_layers)])


def target_probs(parts: ModelParts, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """p^l[target] for rows of one layer's hidden states [r, H] -> [r] fp32, in slices."""
    out = []
    for a in range(0, hidden.shape[0], ROWS_PER_PASS):
        lp = log_probs(lens_logits(parts, hidden[a : a + ROWS_PER_PASS]))
        rows = targets[a : a + ROWS_PER_PASS, None].to(lp.device)
        out.append(lp.gather(-1, rows)[:, 0].exp().cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float32)
