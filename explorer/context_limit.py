"""The one check of a prompt's length against the model's context, and its one sentence.

Start-up, `trace`, `tree`, the engine, a server backend and the app's appends all ask
here, so an over-long prompt reads the same wherever it is refused. Torch-free and
Textual-free: every layer may import it.
"""

from __future__ import annotations


def _tokens(n: int) -> str:
    return f"{n} token" if n == 1 else f"{n} tokens"


def context_error(n_tokens: int, limit: int | None, model: str = "the model", adding: int = 0) -> str | None:
    """None when a prompt of `n_tokens` plus `adding` new tokens fits in a context of
    `limit` tokens (None: no known limit), else the one sentence that says why not."""
    if limit is None or n_tokens + adding <= limit:
        return None
    if n_tokens > limit:
        return f"The prompt has {_tokens(n_tokens)}, more than the {limit} that {model} supports."
    room = limit - n_tokens
    head = f"The prompt has {_tokens(n_tokens)} and {model} supports {limit}, "
    if room <= 0:
        return head + "so no new token fits."
    return head + f"so at most {room} new token{'' if room == 1 else 's'} fit, not {adding}."


__all__ = ["context_error"]
