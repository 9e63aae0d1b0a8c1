"""`trace --attribution METHOD`: for every generated token, the attribution of that token
over the positions before it (one raw signed value per position; saliency is unsigned),
added to its JSONL line as `attribution`.

Step s chose token t at position p; its attribution is the engine's (explorer/engine/
attribution.py) for target t after ids[:p]. The prompt's KV cache is walked back from the
end (each shorter prefix is a pop, no model work); each attribution is its own
forward+backward pass of that prefix (n_steps of them for integrated gradients).
"""

from __future__ import annotations

import argparse

from explorer.flags import add_attribution_flags
from explorer.backend.types import ATTRIBUTION_METHODS


def add_trace_attribution_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--attribution", choices=ATTRIBUTION_METHODS, metavar="METHOD",
                        help="add each generated token's attribution over the positions before "
                             f"it to the JSONL: {' | '.join(ATTRIBUTION_METHODS)}")
    add_attribution_flags(parser)


def describe_attribution(method: str, settings) -> str:
    """The report's settings entry: the method, and for integrated gradients its steps and
    baseline (settings: config.AttributionSettings)."""
    if method != "integrated_gradients":
        return method
    return f"{method}, {settings.n_steps} steps, baseline {settings.baseline}"


def refusal(backend) -> str | None:
    """One sentence when this backend cannot compute attribution (a server), else None."""
    if backend.capabilities.attribution:
        return None
    return (f"--attribution needs gradients of a local model; attribution is unavailable on "
            f"this backend ({backend.capabilities.kind}).")


def step_attributions(backend, key, ids: tuple[int, ...], prompt_len: int, method: str,
                      n_steps: int | None = None) -> list[list[float]]:
    """Per generated position p (prompt_len..), the attribution of ids[p] after ids[:p].
    Leaves `key` synced to the prompt."""
    out: dict[int, list[float]] = {}
    for p in range(len(ids) - 1, prompt_len - 1, -1):
        backend.sync(key, ids[:p])  # a pop: the cache already holds this prefix
        result = backend.attribution(key, ids[p], method, n_steps=n_steps)
        out[p] = [float(v) for v in result.values]
    return [out[p] for p in range(prompt_len, len(ids))]


def add_attribution_fields(lines: list[dict], values: list[list[float]] | None) -> list[dict]:
    if values is None:
        return lines
    return [dict(line, attribution=v) for line, v in zip(lines, values, strict=True)]
