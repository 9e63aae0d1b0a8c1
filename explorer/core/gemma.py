"""Gemma's token-analysis layouts for `trace --format gemma`: its visualisers read one
JSON object per response,

    {"prompt": TEXT, "response": TEXT,
     "data": [{"token", "logprob", "prob", "other_tokens": [{"token", "logprob", "prob"}]}]}

one `data` entry per generated token, `prob` in percent (100 * exp(logprob)), `token` the
token's raw text, `other_tokens` the top candidates of the distribution it was chosen from
other than the chosen token itself (most likely first). The tree's layout is in
explorer.tree.gemma; reading both back is explorer.session.gemma_files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from explorer.core.trace import Trace


def _entry(token: str, logprob: float | None) -> dict:
    ok = logprob is not None and math.isfinite(logprob)
    return {"token": token, "logprob": float(logprob) if ok else None,
            "prob": 100.0 * math.exp(logprob) if ok else 0.0}


def gemma_line(result: Trace, decode: Callable[[Sequence[int]], str], top_k: int) -> dict:
    """The response of a trace as Gemma's logprobs JSONL line."""
    texts: dict[int, str] = {}

    def raw(token_id: int) -> str:
        if token_id not in texts:
            texts[token_id] = decode([token_id])
        return texts[token_id]

    data = []
    for record, before in result.steps:
        entry = _entry(raw(record.token_id), record.logprob)
        entry["other_tokens"] = [_entry(raw(c.token_id), c.logprob) for c in before.top[:top_k]
                                 if c.token_id != record.token_id]
        data.append(entry)
    return {"prompt": decode(result.prompt_ids), "response": decode(result.completion_ids), "data": data}
