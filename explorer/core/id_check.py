"""The id check: does re-tokenising the text give back the ids that were generated?

A completion is a list of ids; its text, tokenised again (as a server or the next turn of
a chat would), may not give the same ids: a tokenizer merges tokens across the boundary
between prompt and completion, splits a token differently, or adds a BOS in front of text
that already spells one (a saved or templated prompt starting with "<|begin_of_text|>").
The check encodes the prompt's text + the completion's decoded text with the backend's
own `encode` (as the prompt's ids were made) and lists the spans where the ids differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from explorer.backend import Backend


@dataclass(frozen=True)
class Mismatch:
    """Generated ids[start:end] (positions in prompt + completion) came back as `retokenised`."""

    start: int
    end: int
    generated: tuple[int, ...]
    retokenised: tuple[int, ...]


@dataclass(frozen=True)
class IdCheck:
    ids: tuple[int, ...]  # prompt + completion, as generated
    retokenised: tuple[int, ...]  # encode(decode(ids))
    prompt_len: int
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def check_ids(backend: Backend, prompt_text: str, prompt_ids: Sequence[int],
              completion_ids: Sequence[int]) -> IdCheck:
    """`prompt_text`: the text the prompt's ids came from (the --prompt text, a file's text)."""
    ids = tuple(int(i) for i in prompt_ids) + tuple(int(i) for i in completion_ids)
    again = tuple(backend.encode(prompt_text + backend.decode(completion_ids)))
    matcher = SequenceMatcher(a=ids, b=again, autojunk=False)
    mismatches = tuple(
        Mismatch(i1, i2, ids[i1:i2], again[j1:j2])
        for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"
    )
    return IdCheck(ids, again, len(prompt_ids), mismatches)
