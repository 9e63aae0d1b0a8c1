"""Constraints on a vLLM server: its structured outputs (the `structured_outputs` field of
/v1/completions in vLLM 0.32; xgrammar or llguidance inside the server) generate the whole
constrained completion in one request, greedily. `trace --server` then replays those
tokens step by step through the usual records path, so every step's numbers come from the
server as for an unconstrained trace.

The mask runs inside the server, which reports only its top-K log-probs of the model's own
distribution: which of those tokens the constraint allowed is not known here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from explorer.remote.base import check_token
from explorer.remote.client import RemoteError, field
from explorer.sampling.constraint import ConstraintSpec


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


def constrained_completion(backend, ids: Sequence[int], spec: ConstraintSpec, max_tokens: int) -> list[int]:
    """The token ids vLLM generates greedily after ids under the constraint (its final
    end-of-sequence token included when it stopped there). Raises RemoteError (one
    sentence), e.g. for a constraint the server refuses."""
    body = {"model": backend.model, "prompt": [int(i) for i in ids], "max_tokens": int(max_tokens),
            "temperature": 0, "return_token_ids": True, "structured_outputs": structured_outputs(spec)}
    where = backend.client.where
    choice = field(backend.client.post("/v1/completions", body), "choices", 0, where=where,
                   what="/v1/completions")
    tokens = field(choice, "token_ids", where=where, what="/v1/completions")
    if not tokens:
        raise RemoteError(f"The server at {where} generated no token under the constraint.")
    return [check_token(t, backend.vocab_size, where) for t in tokens]
