"""A server's answer read as data: each value checked for its type and range before it
becomes a number on screen, so a server that sends `"abc"` for a rank, a string log-prob,
`+Infinity`, a positive log-prob or `true` for a token id gives one sentence (a
RemoteError naming the server) instead of a traceback or a silently wrong number."""

from __future__ import annotations

import math
from typing import Any

from explorer.backend.errors import BackendError

# A log-softmax is <= 0; a server rounding in float32 may print a hair above it.
LOGPROB_SLACK = 1e-5


class RemoteError(BackendError):
    """A server that could not be reached or gave an answer we cannot use."""


def field(data: Any, *path: str | int, where: str, what: str) -> Any:
    """data[path...] or a RemoteError naming the missing field (a server of another kind,
    or a version that answers differently)."""
    node = data
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            name = ".".join(str(p) for p in path)
            raise RemoteError(f"The server at {where} answered {what} without the field '{name}'.") from None
    return node


def text_field(data: Any, *path: str | int, where: str, what: str) -> str:
    """A string field (detokenized text) or a RemoteError."""
    value = field(data, *path, where=where, what=what)
    if not isinstance(value, str):
        raise RemoteError(f"The server at {where} answered {what} with text that is not a string ({_shown(value)}).")
    return value


def is_int(value: Any) -> bool:
    """A JSON integer: an int that is not a bool (JSON true is not 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def whole(value: Any, where: str, what: str, *, least: int = 0) -> int:
    """A count or rank from a server's answer: an integer >= least."""
    if not is_int(value) or value < least:
        raise RemoteError(f"The server at {where} sent {what} that is not a whole number "
                          f"of at least {least} ({_shown(value)}).")
    return int(value)


def check_token(token_id: Any, vocab_size: int, where: str) -> int:
    """A token id from a server's answer: an integer inside the vocabulary."""
    if not is_int(token_id):
        raise RemoteError(f"The server at {where} sent a token id that is not a whole number ({_shown(token_id)}).")
    if not 0 <= token_id < vocab_size:
        raise RemoteError(f"The server at {where} sent token id {token_id}, outside the vocabulary of {vocab_size}.")
    return int(token_id)


def logprob(value: Any, where: str) -> float:
    """A log-probability from a server's answer: a JSON number, not NaN, not +inf, not above
    0 (-inf, probability 0, is kept; a hair above 0 from rounding becomes 0)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise RemoteError(f"The server at {where} sent a log-probability that is not a number ({_shown(value)}).")
    out = float(value)
    if math.isnan(out):
        raise RemoteError(f"The server at {where} sent a log-probability that is not a number.")
    if out > LOGPROB_SLACK:  # +inf too: a probability above 1
        raise RemoteError(f"The server at {where} sent a log-probability above 0 ({out:g}), "
                          "a probability above 1.")
    return min(out, 0.0)


finite = logprob  # the older name


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"
