"""What the lane hands out and takes back: presses, edits, jobs and a sync's result.
Plain data, no Textual (explorer.session.lane runs them)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from explorer.backend.types import TokenRecord
from explorer.session.chain import AppendChain
from explorer.session.views import JobKind

if TYPE_CHECKING:
    from explorer.session.lane import Lane

Target = tuple[int, tuple[int, ...]]  # (prompt key, ids)


@dataclass(frozen=True)
class Press:
    name: str
    row: int = 0  # append: the table row under the cursor when the key was pressed
    arg: Any = None  # what an Edit needs from the key press (e.g. forced text's ids)


@dataclass(frozen=True)
class Edit:
    """A press registered by the caller that edits the book: `apply(lane, press)` runs in
    key-press order. With `needs` (view names) it waits, like append, until the screen is
    in sync and those views are fetched; it runs anyway when one failed (apply says so)."""

    apply: Callable[["Lane", Press], None]
    needs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Synced:
    """A sync job's result: the records and the ride-along views fetched with them."""

    records: tuple[TokenRecord, ...]
    views: Mapping[str, Any]
    # The ids the records are for, when a chain appended past the job's own ids.
    ids: tuple[int, ...] | None = None


@dataclass
class Job:
    """One piece of model work. JobKind.SYNC: bring prompt `key` to `ids`; JobKind.VIEWS:
    fetch `views` (explorer.session.views) for the shown prompt."""

    id: int
    kind: JobKind
    key: int
    ids: tuple[int, ...]
    forget: tuple[int, ...] = ()
    views: frozenset[str] = frozenset()
    candidates: tuple[int, ...] = ()  # token ids of the shown table (for per-candidate views)
    tracked: tuple[int, ...] = ()  # token ids followed by the "tracked" view
    sampling: Any = None  # sampler settings the "draw" view draws with (a server's sampler)
    prompt_len: int = 0  # how many of ids are the prompt's original ones
    # Sync jobs: append presses handed to the worker while it runs (see chain.py). The
    # lane moves `ids` on as the worker reports chained tokens; the worker reads `ids`
    # only when it starts.
    chain: AppendChain | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def target(self) -> Target:
        return (self.key, self.ids)

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        """Poll this from the model work (thread-safe)."""
        return self._cancel.is_set()
