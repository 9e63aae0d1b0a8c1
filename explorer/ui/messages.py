"""Messages from worker threads to the app. Posting a message is thread-safe; every widget
update happens in the handlers, on the app's own thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from explorer.backend import Backend


@dataclass
class LoadProgress(Message):
    text: str


@dataclass
class Loaded(Message):
    backend: Backend
    ids: tuple[int, ...]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    messages: list[dict] | None = None  # a chat prompt's messages (the ids are their rendering)
    original: tuple[int, ...] | None = None  # a saved prompt's ctrl+r target (None: the ids)
    origins: tuple[str, ...] | None = None  # a saved prompt's per-id provenance


@dataclass
class LoadFailed(Message):
    text: str  # one sentence for the screen


@dataclass
class JobProgress(Message):
    job: int
    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        # A slow screen need not draw every step of a long prefill: the newest one will do.
        return isinstance(message, JobProgress) and message.job == self.job


@dataclass
class ChainProgress(Message):
    """A sync job's worker appended the tokens of presses handed to its chain: the
    newest state (`ids`, their records and the ride-along views)."""

    job: int
    ids: tuple[int, ...]
    records: Any
    views: Any

    def can_replace(self, message: Message) -> bool:
        # Each carries the whole state: the newest one will do.
        return isinstance(message, ChainProgress) and message.job == self.job


@dataclass
class JobDone(Message):
    """A lane job has stopped: exactly one per job, whatever happened."""

    job: int
    result: Any = None
    error: BaseException | None = None
