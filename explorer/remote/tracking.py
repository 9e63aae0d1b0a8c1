"""Tracked tokens at every prompt position on a server that reports chosen tokens'
log-probs only after a prompt's *last* position (vLLM's `logprob_token_ids` on
/v1/completions). Pure Python and numpy; the server call is handed in.

Row i of a TrackedSeries is the distribution after position i, which is the answer for the
prefix ids[:i+1]. So the prefixes go to the server as a list of prompts, `chunk` per request
(progress and cancel are checked between requests). Each prefix extends one the server has
just seen, so its prefix cache leaves only the tail past the last full KV block to compute
(README: "Tracked tokens on vLLM" for what that costs).

Log-probs are exact at any rank (the server gathers them from the full softmax). Ranks
come from the top-K rows the server already sent with the prompt (the records' rows):
exact for a token inside that list or for the prompt's own next token (the server ranks
it); otherwise a lower bound, 1 + the number of listed tokens more likely (K + 1 when the
token is below the list), flagged in TrackedSeries.rank_bound.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from explorer.backend.errors import Cancelled
from explorer.backend.protocol import IsCancelled, Progress
from explorer.lru import LRU
from explorer.prefix import common_prefix
from explorer.remote.numbers import Distribution

# (prefixes, token ids) -> per prefix {token id: log-prob after the prefix's last position}
FetchRows = Callable[[list[tuple[int, ...]], list[int]], list[dict[int, float]]]

CHUNK = 32  # prefixes per request: small enough that cancel and progress answer quickly
KEEP_PER_TOKEN = 8  # prompts remembered per token (prompt book entries, forks)
KEEP_TOKENS = 64  # tokens remembered
KEEP_STEPS = 4096  # (step prefix, token) log-probs fetched beside appends


class PrefixLogprobs:
    """Log p of chosen tokens after every prefix of a prompt, fetched in chunks and cached
    per token, so a re-fetch after an append asks only for the new positions. A fetch that
    is cancelled or fails caches nothing."""

    def __init__(self, fetch: FetchRows, *, chunk: int = CHUNK):
        self._fetch = fetch
        self.chunk = max(1, int(chunk))
        self._lock = threading.Lock()
        # token id -> [(prompt ids, float32 column of log-probs after each position)]
        self._known: LRU[int, list[tuple[tuple[int, ...], np.ndarray]]] = LRU(KEEP_TOKENS)

    def logprobs(self, ids: Sequence[int], tokens: Sequence[int], *,
                 progress: Progress | None = None,
                 cancelled: IsCancelled | None = None) -> np.ndarray:
        """float32 [n, k]: log p_i[tokens[j]] after each position i of ids."""
        ids = tuple(int(i) for i in ids)
        tokens = [int(t) for t in tokens]
        n = len(ids)
        out = np.empty((n, len(tokens)), dtype=np.float32)
        # Positions already known, per token: the longest cached prefix shared with ids.
        todo: dict[int, list[int]] = {}  # first position to fetch -> columns
        with self._lock:
            for j, t in enumerate(tokens):
                have, column = self._best(t, ids)
                out[:have, j] = column[:have]
                if have < n:
                    todo.setdefault(have, []).append(j)
        total = sum(n - start for start in todo)
        done = 0
        for start, columns in sorted(todo.items()):
            wanted = [tokens[j] for j in columns]
            for s in range(start, n, self.chunk):
                if cancelled is not None and cancelled():
                    raise Cancelled("Tracking the tokens was cancelled.")
                end = min(s + self.chunk, n)
                rows = self._fetch([ids[: i + 1] for i in range(s, end)], wanted)
                for i, row in zip(range(s, end), rows):
                    out[i, columns] = [row[t] for t in wanted]
                done += end - s
                if progress is not None:
                    progress(done, total)
        with self._lock:  # only a whole answer is remembered
            for j, t in enumerate(tokens):
                self._remember(t, ids, out[:, j].copy())
        return out

    def _best(self, token: int, ids: tuple[int, ...]) -> tuple[int, np.ndarray]:
        best, column = 0, np.empty(0, dtype=np.float32)
        for old_ids, old in self._known.peek(token, ()):
            n = min(common_prefix(old_ids, ids), len(old))
            if n > best:
                best, column = n, old
        return best, column

    def _remember(self, token: int, ids: tuple[int, ...], column: np.ndarray) -> None:
        entries = self._known.pop(token, [])
        if not any(common_prefix(i, ids) == len(ids) for i, _ in entries):  # else a pop: known
            entries = [(i, c) for i, c in entries if common_prefix(i, ids) < len(i)]
            entries.insert(0, (ids, column))  # replaces the prompts it extends
        self._known.put(token, entries[:KEEP_PER_TOKEN])


class StepRows:
    """Tracked tokens of a generation's steps, fetched beside each step's own request.

    vLLM 0.32 answers one request with either the top-K (`logprobs`) or the given ids
    (`logprob_token_ids` replaces the top-K: its completion protocol then drops `logprobs`),
    so a step's tracked ids cannot ride in the step's request itself. They go out at the
    same time instead, and the server runs both in one engine step, the second reading the
    first's prefix cache. `fetch` (the prefix-batch function PrefixLogprobs calls) then
    asks the server only for the prefixes no step fetched."""

    def __init__(self, fetch: FetchRows):
        self._fetch = fetch
        self._rows: LRU[tuple, float] = LRU(KEEP_STEPS)  # (prefix ids, token) -> log p
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracked-steps")

    def beside(self, ids: tuple[int, ...], wanted: list[int], step: Callable[[], object]):
        """step() (the append's request) with the tracked request for `ids` beside it."""
        side = self._pool.submit(self._fetch, [ids], wanted)
        try:
            out = step()
        except BaseException:
            side.cancel()
            raise
        for t, lp in side.result()[0].items():  # a failed tracked request fails the step
            self._rows.put((ids, t), lp)
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def fetch(self, prefixes: list[tuple[int, ...]], wanted: list[int]) -> list[dict[int, float]]:
        """Rows for `prefixes`: the ones steps fetched from memory, the rest from the server."""
        rows: list[dict[int, float] | None] = []
        for p in prefixes:
            known = {t: self._rows.peek((p, t)) for t in wanted}
            rows.append(known if all(v is not None for v in known.values()) else None)
        todo = [i for i, r in enumerate(rows) if r is None]
        if todo:
            for i, row in zip(todo, self._fetch([prefixes[i] for i in todo], wanted)):
                rows[i] = row
        return rows


def ranks_from_rows(after: Sequence[Distribution | None], tokens: Sequence[int],
                    logprobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 [n, k] ranks, bool [n, k] True where the rank is only a lower bound).

    after[i]: what the server listed about the distribution after position i (its top-K,
    and the exact rank of the prompt's next token). A token it listed has its exact rank;
    any other ranks below every listed token more likely than it."""
    n, k = logprobs.shape
    ranks = np.ones((n, k), dtype=np.int64)
    bound = np.zeros((n, k), dtype=bool)
    for i in range(n):
        row = after[i] if i < len(after) else None
        for j, t in enumerate(tokens):
            exact = None if row is None else row.rank_of(int(t))
            if exact is not None:
                ranks[i, j] = exact
                continue
            lp = float(logprobs[i, j])
            above = 0 if row is None else sum(1 for _, other in row.top if other > lp)
            ranks[i, j], bound[i, j] = 1 + above, True
    return ranks, bound
