"""Files the headless commands and the app write: JSONL token lines, written atomically.

One writer for both: `trace --jsonl` (one line per generated token) and the app's `x`
(one line per prompt position). A line describes one token and the distribution it was
predicted by, so the two files read the same way in pandas:

    step, position, token_id, token, logprob, rank, entropy (nats), entropy_bound,
    top: [{token_id, token, logprob}]

`logprob`, `rank` and `entropy` are null on a prompt's first position (nothing predicts it)
and `top` is empty there. `entropy_bound` is true when `entropy` is only a lower bound,
computed from a server's truncated top-K list (explorer/remote/numbers.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from explorer.atomic import write_text_atomic
from explorer.backend.types import Candidate, TokenRecord
from explorer.errors import ExplorerError
from explorer.output_paths import output_problem


class ExportError(ExplorerError):
    """A file could not be written; str() is one sentence. Nothing half-written is left."""


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (explorer/atomic.py). Raises ExportError."""
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ExportError(f"Could not write {path}: {reason}.") from exc


def check_writable(path: Path, reading: Path | None = None) -> None:
    """Fail early, before any model work, when `path` cannot be written or is the input
    file `reading` (explorer/output_paths.py). Raises ExportError."""
    why = output_problem(Path(path), (reading,))
    if why:
        raise ExportError(why)


def _finite(value: float | None) -> float | None:
    # JSON has no -Infinity; a token with probability 0 gets null rather than a broken file.
    return None if value is None or not math.isfinite(value) else float(value)


def token_line(step: int, position: int, record: TokenRecord,
               predicted_by: Sequence[Candidate], token_str: Callable[[int], str]) -> dict:
    """One JSONL line: `record` is the token at `position`; `predicted_by` is the top of the
    distribution that predicted it (the previous position's record.top)."""
    return {
        "step": step,
        "position": position,
        "token_id": record.token_id,
        "token": token_str(record.token_id),
        "logprob": _finite(record.logprob),
        "rank": record.rank,
        "entropy": _finite(record.entropy),
        "entropy_bound": bool(record.entropy_bound),
        "top": [{"token_id": c.token_id, "token": token_str(c.token_id), "logprob": _finite(c.logprob)}
                for c in predicted_by],
    }


def record_lines(records: Sequence[TokenRecord], decode: Callable[[Sequence[int]], str], *,
                 start: int = 0, first_step: int | None = None, top: int | None = None) -> list[dict]:
    """Lines for positions start.. of `records` (a prompt's records, as sync returns them).
    `step` counts from `first_step` (default: the position itself). `decode` turns ids into
    text (Backend.decode); each id is decoded once. `top`: keep that many candidates of
    each distribution (default: all the backend kept)."""
    texts: dict[int, str] = {}

    def token_str(token_id: int) -> str:
        if token_id not in texts:
            texts[token_id] = decode([token_id])
        return texts[token_id]

    base = start if first_step is None else first_step
    return [
        token_line(base + i - start, i, records[i], records[i - 1].top[:top] if i > 0 else (), token_str)
        for i in range(start, len(records))
    ]


def jsonl_text(lines: Iterable[dict]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n" for line in lines)


def write_jsonl(path: Path, lines: Iterable[dict]) -> None:
    """One JSON object per line, written atomically. Raises ExportError."""
    write_atomic(path, jsonl_text(lines))
