"""Carrying the prompt book over to another model (a model switch). No Textual, no torch.

Prompts are token ids. When the new model's tokenizer reads a prompt's ids as the same
text the old one did, the ids are kept exactly. Otherwise the prompt is re-tokenised from
its text with the new tokenizer (token boundaries may change; BOS as the new tokenizer
adds it), and the caller says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from explorer.session.book import PromptBook
from explorer.session.start import FALLBACK_TEXT

Decode = Callable[[Sequence[int]], str]
Encode = Callable[[str], list[int]]


def carry_book(book: PromptBook, old_decode: Decode, new_decode: Decode, new_encode: Encode,
               new_vocab: int, model: str) -> tuple[PromptBook, str | None]:
    """(the new model's book, one warning sentence or None). Order and the current index
    are kept; each prompt's original (ctrl+r) is carried the same way as its ids."""
    changed = 0

    def carry(ids: tuple[int, ...]) -> tuple[int, ...]:
        text = old_decode(ids)
        if all(0 <= t < new_vocab for t in ids) and new_decode(ids) == text:
            return ids
        return tuple(new_encode(text) or new_encode(FALLBACK_TEXT))

    pairs = []
    for prompt in book:
        ids, original = carry(prompt.ids), carry(prompt.original)
        changed += (ids, original) != (prompt.ids, prompt.original)
        pairs.append((ids, original))
    carried = PromptBook.restore(pairs, book.index)
    if not changed:
        return carried, None
    which = ("The prompt was re-tokenised from its text" if len(book) == 1 else
             f"{changed} of {len(book)} prompts were re-tokenised from their text")
    return carried, (f"{which} for {model}, whose tokenizer differs; token boundaries may "
                     "have changed.")
