"""PromptBook: the list of prompts the user cycles through, as token ids.

Prompts are token-id tuples, never re-tokenised text: a text round trip can change token
boundaries and duplicate BOS. Each prompt carries a unique key that the engine uses to find
its KV cache, so two prompts with equal ids still have separate caches and histories.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Iterable, Sequence


class LastPromptError(ValueError):
    """Removing the only prompt, or popping its only token, would leave nothing to show."""


_keys = itertools.count(1)


# How a token got into the prompt (the prompt panel marks each kind).
PROMPT, PICKED, SAMPLED, FORCED = "prompt", "picked", "sampled", "forced"


@dataclass(frozen=True, slots=True)
class Prompt:
    key: int  # unique for the life of the process; the engine's cache key
    ids: tuple[int, ...]
    original: tuple[int, ...]  # what ctrl+r goes back to
    origins: tuple[str, ...] = ()  # one per id: PROMPT, PICKED, SAMPLED or FORCED
    # The chat messages the original ids were rendered from (None: plain text).
    messages: tuple[tuple[str, str], ...] | None = None
    # Where a branch was made (issue 23): (the parent's number in the book then, 1-based;
    # the position, 1-based, whose token the branch replaced). None: not a branch.
    branched_from: tuple[int, int] | None = None

    @classmethod
    def new(cls, ids: Iterable[int], messages=None, *, original: Sequence[int] | None = None,
            origins: Sequence[str] | None = None) -> Prompt:
        """A prompt; `original` and `origins` restore a saved one's (default: all prompt)."""
        ids = tuple(int(i) for i in ids)
        if not ids:
            raise ValueError("A prompt needs at least one token.")
        chat = None if messages is None else tuple((m["role"], m["content"]) for m in messages)
        original = ids if not original else tuple(int(i) for i in original)
        origins = (PROMPT,) * len(ids) if origins is None or len(origins) != len(ids) else tuple(origins)
        return cls(next(_keys), ids, original, origins, chat)

    def with_ids(self, ids: Sequence[int], origin: str = PICKED) -> Prompt:
        """New ids; tokens kept from the common prefix keep their origin, new ones get `origin`."""
        ids = tuple(int(i) for i in ids)
        keep = 0
        for a, b in zip(self.ids, ids):
            if a != b:
                break
            keep += 1
        origins = self.origins[:keep] + (origin,) * (len(ids) - keep)
        return replace(self, ids=ids, origins=origins)

    @property
    def chat(self) -> list[dict[str, str]] | None:
        """The messages as the chat template takes them."""
        return None if self.messages is None else [{"role": r, "content": c} for r, c in self.messages]


class PromptBook:
    """An ordered list of prompts with a current index. Mutators return what changed so a
    caller can tell the engine (e.g. `remove()` returns the key whose cache can go)."""

    def __init__(self, prompts: Iterable[Sequence[int] | Prompt]):
        self._prompts = [p if isinstance(p, Prompt) else Prompt.new(p) for p in prompts]
        if not self._prompts:
            raise ValueError("A prompt book needs at least one prompt.")
        self._index = 0

    @classmethod
    def restore(cls, prompts: Iterable[tuple[Sequence[int], Sequence[int]]], index: int = 0) -> PromptBook:
        """A book of (ids, original) pairs with `index` current; every prompt gets a new key
        (e.g. for another model, whose caches start empty)."""
        book = cls([ids for ids, _ in prompts])
        book._prompts = [replace(p, original=tuple(int(i) for i in original))
                         for p, (_, original) in zip(book._prompts, prompts)]
        book._index = min(max(index, 0), len(book._prompts) - 1)
        return book

    # -- reading -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._prompts)

    def __iter__(self):
        return iter(self._prompts)

    @property
    def index(self) -> int:
        return self._index

    @property
    def current(self) -> Prompt:
        return self._prompts[self._index]

    # -- moving between prompts ----------------------------------------------------------
    def next(self) -> Prompt:
        self._index = (self._index + 1) % len(self._prompts)
        return self.current

    def previous(self) -> Prompt:
        self._index = (self._index - 1) % len(self._prompts)
        return self.current

    def select(self, key: int) -> Prompt:
        """Make the prompt with this key current. Raises KeyError when no prompt has it."""
        for index, prompt in enumerate(self._prompts):
            if prompt.key == key:
                self._index = index
                return prompt
        raise KeyError(key)

    def add(self, ids: Sequence[int]) -> Prompt:
        """Append a new prompt at the end and make it current."""
        self._prompts.append(Prompt.new(ids))
        self._index = len(self._prompts) - 1
        return self.current

    def fork(self) -> Prompt:
        """Copy the current prompt (ids and original) right after it and move to the copy."""
        src = self.current
        copy = replace(src, key=next(_keys))
        self._prompts.insert(self._index + 1, copy)
        self._index += 1
        return copy

    def branch(self, index: int, token_id: int) -> Prompt:
        """A fork of the current prompt cut before token `index` (0-based) with `token_id`
        in its place, right after it, and current; the parent is left as it was."""
        src = self.current
        if not 0 <= index < len(src.ids):
            raise ValueError(f"cannot branch at token {index} of {len(src.ids)}")
        self.fork()
        self.set_ids(src.ids[:index] + (int(token_id),))
        self._prompts[self._index] = replace(self.current, branched_from=(self._index, index + 1))
        return self.current

    def remove(self) -> Prompt:
        """Remove the current prompt and return it; the next one (or the new last) is current."""
        if len(self._prompts) == 1:
            raise LastPromptError("The last prompt cannot be removed.")
        removed = self._prompts.pop(self._index)
        self._index = min(self._index, len(self._prompts) - 1)
        return removed

    # -- editing the current prompt ------------------------------------------------------
    def set_ids(self, ids: Sequence[int], origin: str = PICKED) -> Prompt:
        if not ids:
            raise LastPromptError("A prompt needs at least one token.")
        self._prompts[self._index] = self.current.with_ids(ids, origin)
        return self.current

    def append(self, token_id: int, origin: str = PICKED) -> Prompt:
        return self.set_ids(self.current.ids + (int(token_id),), origin)

    def extend(self, token_ids: Sequence[int], origin: str = FORCED) -> Prompt:
        return self.set_ids(self.current.ids + tuple(int(t) for t in token_ids), origin)

    def pop(self) -> int:
        """Drop the last token of the current prompt and return it."""
        ids = self.current.ids
        if len(ids) == 1:
            raise LastPromptError("The prompt's only token cannot be removed.")
        self.set_ids(ids[:-1])
        return ids[-1]

    def reset(self) -> Prompt:
        self._prompts[self._index] = self.current.with_ids((), PROMPT).with_ids(self.current.original, PROMPT)
        return self.current
