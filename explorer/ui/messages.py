"""Messages from model workers (threads) to the app. Posting a message is thread-safe;
every widget update happens in the handlers, on the app's own thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from textual.message import Message

from explorer.backend.types import TokenRecord


@dataclass
class LoadProgress(Message):
    text: str


@dataclass
class Loaded(Message):
    engine: Any  # an explorer.backend.Backend
    ids: tuple[int, ...]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class PrefillProgress(Message):
    job: int
    done: int
    total: int


@dataclass
class Synced(Message):
    job: int
    key: int
    ids: tuple[int, ...]
    records: tuple[TokenRecord, ...]


@dataclass
class ViewData(Message):
    """Arrays for the current ids, fetched because a view that needs them is shown."""

    job: int
    ids: tuple[int, ...]
    influence: np.ndarray | None = None
    prompt_lens: np.ndarray | None = None
    candidate_lens: np.ndarray | None = None
