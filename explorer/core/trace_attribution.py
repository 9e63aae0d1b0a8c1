"""`trace --attribution METHOD`: for every generated token, the attribution of that token
over the positions before it (one raw value per position: signed for input x gradient and
integrated gradients, >= 0 for saliency and attention), added to its JSONL line as
`attribution`, with `attribution_method`, `attribution_baseline`, `attribution_steps` and
`attribution_completeness` saying how it was made (None where a method has no such thing).

Step s chose token t at position p; its attribution is the engine's (explorer/engine/
attribution.py) for target t after ids[:p]. The prompt's KV cache is walked back from the
end (each shorter prefix is a pop, no model work); each attribution is its own
forward+backward pass of that prefix (integrated gradients: its adaptive steps of them;
attention: one forward pass).
"""

from __future__ import annotations

import argparse

from explorer.backend.protocol import Feature
from explorer.backend.types import ATTRIBUTION_METHODS
from explorer.flags import add_attribution_flags


def add_trace_attribution_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--attribution", choices=ATTRIBUTION_METHODS, metavar="METHOD",
                        help="add each generated token's attribution over the positions before "
                             f"it to the JSONL: {' | '.join(ATTRIBUTION_METHODS)}")
    add_attribution_flags(parser)


def describe_attribution(method: str, settings, results=()) -> str:
    """The report's settings entry: the method, and for integrated gradients its baseline,
    the steps it started from and took, and its completeness where a result misses 2%
    (settings: config.AttributionSettings; results: the trace's Attribution results)."""
    if method != "integrated_gradients":
        return method
    text = f"{method}, baseline {settings.baseline}, from {settings.n_steps} steps"
    used = sorted({r.n_steps for r in results if r.n_steps is not None})
    if used:
        text += f" (took {', '.join(map(str, used))})"
    missed = [r.completeness for r in results if not r.complete]
    if missed:
        text += f"; {len(missed)} not within 2% of Δ log p (completeness " \
                f"{', '.join(f'{c:.3f}' for c in missed)})"
    return text


def refusal(backend) -> str | None:
    """One sentence when this backend cannot compute attribution (a server), else None:
    the backend's own (Capabilities.missing), with the flag named."""
    why = backend.capabilities.missing(Feature.ATTRIBUTION)
    return None if why is None else f"--attribution: {why}"


def step_attributions(backend, key, ids: tuple[int, ...], prompt_len: int, method: str,
                      n_steps: int | None = None) -> list:
    """Per generated position p (prompt_len..), the Attribution of ids[p] after ids[:p].
    Leaves `key` synced to the prompt."""
    out: dict[int, object] = {}
    for p in range(len(ids) - 1, prompt_len - 1, -1):
        backend.sync(key, ids[:p])  # a pop: the cache already holds this prefix
        out[p] = backend.attribution(key, ids[p], method, n_steps=n_steps)
    return [out[p] for p in range(prompt_len, len(ids))]


def add_attribution_fields(lines: list[dict], results: list | None) -> list[dict]:
    """`attribution` (the raw scores) and the four fields that say how they were made."""
    if results is None:
        return lines
    return [dict(line, attribution=[float(v) for v in r.values], **r.fields())
            for line, r in zip(lines, results, strict=True)]
