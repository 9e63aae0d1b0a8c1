"""The sampler as pure functions on one logits row.

Order (transformers' `generate`, `_get_logits_processor` in transformers 5):
  1. repetition penalty          RepetitionPenaltyLogitsProcessor   (a "processor")
  2. presence/frequency penalty  OpenAI's formula, ours             (a "processor")
  3. temperature                 TemperatureLogitsWarper            (a "warper")
  4. top-k                       TopKLogitsWarper
  5. top-p                       TopPLogitsWarper (its exact result, faster: top_p.py)
  6. min-p                       MinPLogitsWarper
generate appends processors passed by the caller (`logits_processor=`) after its own
processors and before the warpers, so step 2 sits exactly where a user's presence/frequency
processor would run inside generate; it also matches OpenAI and vLLM, which penalise the
raw logits before temperature. Warpers only run when sampling: temperature 0 (greedy) stops
after step 2 and puts all mass on the first argmax, as greedy generate does.

torch and transformers are imported inside the functions, so importing this module (and
the settings) costs nothing for a caller that never samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .settings import SamplingSettings
from .top_p import top_p_filter


@dataclass(frozen=True)
class Distributions:
    """p_base = softmax(z); p_final = the distribution the sampler draws from (exactly 0
    for excluded tokens). Both float32 [V] on the CPU."""

    p_base: np.ndarray
    p_final: np.ndarray
    # bool [V] from a constraint (explorer.sampling.constraint): False = the constraint
    # forbids the token (p_final 0, drawn apart from top-k/top-p exclusions); None: none.
    valid: np.ndarray | None = None

    @property
    def kept(self) -> np.ndarray:
        """bool [V]: tokens the sampler can still draw."""
        return self.p_final > 0


def presence_frequency_penalty(scores, ids: Sequence[int], prompt_len: int,
                               presence: float, frequency: float):
    """OpenAI: z[j] -= c[j] * frequency + (c[j] > 0) * presence, where c[j] counts token j
    among ids[prompt_len:], the tokens appended since the prompt's original ids.
    scores: [1, V] float tensor; returns a new tensor."""
    import torch

    appended = list(ids)[prompt_len:]
    if not appended or (presence == 0 and frequency == 0):
        return scores
    vocab = scores.shape[-1]
    counts = torch.bincount(torch.tensor(appended, dtype=torch.long, device=scores.device),
                            minlength=vocab)[:vocab].to(scores.dtype)
    return scores - (counts * frequency + (counts > 0).to(scores.dtype) * presence)[None, :]


def final_scores(logits, ids: Sequence[int], prompt_len: int, settings: SamplingSettings,
                 allowed: np.ndarray | None = None):
    """The scores the sampler draws from, fp32 [V] tensor on the logits' device; -inf for
    excluded tokens. Equal to what generate(output_scores=True) reports for one step.

    logits: the model's logits row [V] (any dtype, any device; a numpy array is fine);
    ids: the whole sequence so far (prompt + appended); prompt_len: how many of them are
    the prompt's original ids (presence/frequency count only what comes after);
    allowed: bool [V] from a constraint, applied after temperature and before top-k/top-p
    (where vLLM applies structured-output masks), and before the argmax when greedy.
    """
    import torch
    from transformers import (
        MinPLogitsWarper,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
    )

    # fp32 copy, as generate takes `outputs.logits[:, -1, :].to(copy=True, dtype=float32)`.
    scores = torch.as_tensor(logits).reshape(1, -1).to(dtype=torch.float32, copy=True)
    input_ids = torch.tensor([list(ids)], dtype=torch.long, device=scores.device)
    s = settings
    if s.repetition_penalty != 1.0:
        scores = RepetitionPenaltyLogitsProcessor(s.repetition_penalty)(input_ids, scores)
    scores = presence_frequency_penalty(scores, ids, prompt_len, s.presence_penalty,
                                        s.frequency_penalty)
    if allowed is not None and s.greedy:
        scores = _mask(scores, allowed)
    if s.greedy:
        keep = torch.argmax(scores, dim=-1)  # the first maximum, as greedy generate picks
        out = torch.full_like(scores, float("-inf"))
        out[0, keep] = scores[0, keep]
        return out[0]
    if s.temperature != 1.0:
        scores = TemperatureLogitsWarper(s.temperature)(input_ids, scores)
    if allowed is not None:
        scores = _mask(scores, allowed)
    if s.top_k != 0:
        scores = TopKLogitsWarper(top_k=s.top_k)(input_ids, scores)
    if s.top_p < 1.0:  # TopPLogitsWarper's result without its full sort (top_p.py)
        scores = top_p_filter(scores, s.top_p)
    if s.min_p > 0:
        scores = MinPLogitsWarper(min_p=s.min_p)(input_ids, scores)
    return scores[0]


def _mask(scores, allowed: np.ndarray):
    """-inf where the constraint forbids the token (a new tensor)."""
    import torch

    allowed = np.asarray(allowed, dtype=bool)
    if scores.device.type == "cpu":
        # In numpy: torch's masked_fill on a wide row wakes its thread pool, which on a
        # loaded CPU right after the model's forward cost ~45 ms a step (numpy: ~0.1 ms).
        out = scores.numpy().copy()
        out[:, ~allowed] = -np.inf
        return torch.from_numpy(out)
    keep = torch.as_tensor(allowed, device=scores.device)
    return scores.masked_fill(~keep[None, :], float("-inf"))


def distributions(logits, ids: Sequence[int], prompt_len: int,
                  settings: SamplingSettings, allowed: np.ndarray | None = None) -> Distributions:
    """p_base and p_final for one logits row (see final_scores for the arguments)."""
    import torch

    row = torch.as_tensor(logits).reshape(-1).float()
    p_base = torch.softmax(row, dim=-1)
    p_final = torch.softmax(final_scores(row, ids, prompt_len, settings, allowed), dim=-1)
    valid = None if allowed is None else np.asarray(allowed, dtype=bool)
    return Distributions(p_base=p_base.cpu().numpy(), p_final=p_final.cpu().numpy(), valid=valid)
