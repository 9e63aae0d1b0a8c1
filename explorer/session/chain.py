"""A held key's appends, chained inside the model's worker.

Each press of → appends the candidate at its row of the table after the token before it.
Run one job per press and the engine idles between steps while the result travels to the
event loop, the screen draws and the next job's worker starts (a held key cost 1.4-1.8x
the engine's own steps). Instead, while a sync job runs, the lane hands it the append
presses that would wait for it (`AppendChain.offer`), and the worker appends each one's
token right after the step before (`run_chain`), reporting the newest state now and then.
Still one forward pass per token (an ordinary one-token `sync`), the same tokens in the
same order; only the round trips between them are gone.

The chain is shared by two threads: the lane offers rows on the event loop, the worker
takes them. Once the worker finds it empty, or the lane seals it, it takes no more:
presses from then on wait in the lane's queue as before.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any


class AppendChain:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: deque[int] = deque()
        self._open = True
        # Event-loop side only: presses handed over, and those whose tokens the lane has.
        self.offered = 0
        self.reported = 0

    @property
    def held(self) -> int:
        """Presses handed to the worker whose tokens the lane does not have yet."""
        return self.offered - self.reported

    def offer(self, row: int) -> bool:
        """Hand over an append press (its table row); False once the chain is closed."""
        with self._lock:
            if not self._open:
                return False
            self._rows.append(row)
        self.offered += 1
        return True

    def take(self) -> int | None:
        """The worker's next press, or None: the chain is then closed for good."""
        with self._lock:
            if not self._rows:
                self._open = False
                return None
            return self._rows.popleft()

    def put_back(self, row: int) -> None:
        """The worker could not append the press it took (cancelled, failed)."""
        with self._lock:
            self._rows.appendleft(row)
            self._open = False

    def seal(self) -> None:
        """Take no more presses; the worker still appends those it holds (they came
        before whatever made the lane seal it)."""
        with self._lock:
            self._open = False

    def drop(self) -> list[int]:
        """Close the chain and return the rows the worker has not taken (in order); they
    are no longer counted as handed over. Event-loop side."""
        with self._lock:
            self._open = False
            rows = list(self._rows)
            self._rows.clear()
        self.offered -= len(rows)
        return rows


def run_chain(
    chain: AppendChain,
    ids: tuple[int, ...],
    records: Sequence[Any],
    step: Callable[[tuple[int, ...]], Sequence[Any]],
    report: Callable[[tuple[int, ...], Sequence[Any]], None],
    *,
    stopped: Callable[[], bool] = lambda: False,
    every: float = 0.05,
) -> tuple[tuple[int, ...], Sequence[Any]]:
    """Append the chain's presses one by one from `ids` (whose records are given):
    step(ids) brings the prompt to ids and returns their records (one forward pass for a
    token more); report(ids, records) hands the newest state over at most every `every`
    seconds. Returns the last ids reached and their records. A press taken but not
    appended (stopped, or step raised) goes back into the chain."""
    reported = time.monotonic()
    while not stopped():
        row = chain.take()
        if row is None:
            break
        top = records[-1].top
        if not top:  # (a record without its table: nothing to take; the lane says so)
            chain.put_back(row)
            break
        token = top[min(max(row, 0), len(top) - 1)].token_id
        try:
            records = step(ids + (token,))
        except BaseException:
            chain.put_back(row)
            raise
        ids = ids + (token,)
        now = time.monotonic()
        if now - reported >= every:
            reported = now
            report(ids, records)
    return ids, records
