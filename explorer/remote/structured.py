"""Constraints on a vLLM server: its structured outputs (the `structured_outputs` field of
/v1/completions in vLLM 0.32; xgrammar or llguidance inside the server) generate the whole
constrained completion in one request, greedily or with the sampler's settings (the mask
works inside the server's sampler, so only allowed tokens are drawn). `trace --server` then
replays those tokens step by step through the usual records path, so every step's numbers
come from the server as for an unconstrained trace.

Sampling: one request per completion, not per token (a fresh request would start the
constraint over), so the seed is the one of the completion's first position
(explorer.remote.drawing.position_seed): the same seed, prompt and settings repeat the run.
The presence/frequency penalties are the server's own here: in one request its output
tokens are exactly the tokens appended since the prompt, our definition.

The mask runs inside the server, which reports only its top-K log-probs of the model's own
distribution: which of those tokens the constraint allowed is not known here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from explorer.remote.client import RemoteError, check_token, field
from explorer.remote.drawing import vllm_fields
from explorer.sampling.constraint import ConstraintSpec
from explorer.sampling.settings import SamplingSettings


@dataclass(frozen=True)
class Completion:
    tokens: tuple[int, ...]  # the generated ids, the final end-of-sequence token included
    ends: bool  # the server stopped at its end-of-sequence token (tokens[-1])


def structured_outputs(spec: ConstraintSpec) -> dict:
    """The spec as vLLM's `structured_outputs` request field."""
    if spec.kind == "choice":
        return {"choice": list(spec.value)}
    if spec.kind == "regex":
        return {"regex": str(spec.value)}
    if spec.kind == "grammar":
        return {"grammar": str(spec.value)}  # vLLM reads a Lark grammar as Lark
    # The JSON layout is the server's choice: vLLM 0.32 takes no per-request whitespace
    # setting, only `--structured-outputs-config '{"disable_any_whitespace": true}'`.
    schema = json.loads(spec.value) if isinstance(spec.value, str) else spec.value
    return {"json": schema}


def sampler_fields(settings: SamplingSettings | None, ids: Sequence[int]) -> dict:
    """The request's sampler fields: greedy without settings; else our settings, seeded
    for the first new position, with the server's own presence/frequency penalties."""
    if settings is None:
        return {"temperature": 0}
    body = vllm_fields(settings, ids, len(ids))  # nothing appended yet: no logit bias
    body.update(presence_penalty=float(settings.presence_penalty),
                frequency_penalty=float(settings.frequency_penalty))
    return body


def constrained_completion(backend, ids: Sequence[int], spec: ConstraintSpec, max_tokens: int,
                           settings: SamplingSettings | None = None) -> Completion:
    """What vLLM generates after ids under the constraint, greedily (settings None) or
    with the server's sampler. Raises RemoteError (one sentence), e.g. for a constraint
    the server refuses."""
    body = {"model": backend.model, "prompt": [int(i) for i in ids], "max_tokens": int(max_tokens),
            "return_token_ids": True, "structured_outputs": structured_outputs(spec),
            **sampler_fields(settings, ids)}
    where = backend.client.where
    choice = field(backend.client.post("/v1/completions", body), "choices", 0, where=where,
                   what="/v1/completions")
    tokens = field(choice, "token_ids", where=where, what="/v1/completions")
    if not tokens:
        raise RemoteError(f"The server at {where} generated no token under the constraint.")
    # finish_reason "stop" with no stop string: the model's end-of-sequence token ended it.
    ends = choice.get("finish_reason") == "stop" and choice.get("stop_reason") is None
    return Completion(tuple(check_token(t, backend.vocab_size, where) for t in tokens), ends)
