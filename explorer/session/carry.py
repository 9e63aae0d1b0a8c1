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


def carry_pins(pins: Sequence[int], old, new, model: str) -> tuple[tuple[int, ...], str | None]:
    """(the pinned token ids for the new model, one sentence or None). `old`, `new`: the
    backends (decode, encode_plain, token_text, token_bytes, special_ids, info, capabilities).

    A pin is a token of the old vocabulary, so it crosses by its text, never by its id (ids
    mean other tokens in another vocabulary). The id is kept when the new model reads it as
    the same bytes; else the text is re-tokenised: one token is pinned as is, several pin
    the first (the one the next position predicts) and the sentence says so; a text with no
    token (a special token the new tokenizer lacks) is dropped, and said so.
    """
    if not pins:
        return (), None
    missing = new.capabilities.missing("tracked")
    if missing is not None:
        return (), f"{missing} The {len(pins)} pinned token{'s were' if len(pins) > 1 else ' was'} unpinned."
    kept: list[int] = []
    split, dropped = [], []
    for pin in pins:
        text = old.decode([pin])
        if _same_token(pin, text, old, new):
            ids = [pin]
        else:
            ids = new.encode_plain(text) if text else []
            if pin in old.special_ids and not (len(ids) == 1 and ids[0] in new.special_ids):
                ids = []  # a special token's name spelt out in plain tokens is not that token
        if not ids:
            dropped.append(repr(text))
            continue
        if len(ids) > 1:
            pieces = ", ".join(repr(new.token_text(t)) for t in ids)
            split.append(f"{text!r} is {len(ids)} tokens there ({pieces}), so its first is tracked")
        if ids[0] not in kept:
            kept.append(ids[0])
    parts = split + ([f"{', '.join(dropped)} {'has' if len(dropped) == 1 else 'have'} no token "
                      "there and " + ('was' if len(dropped) == 1 else 'were') + " unpinned"]
                     if dropped else [])
    note = f"Pinned tokens carried to {model} by their text: {'; '.join(parts)}." if parts else None
    return tuple(kept), note


def _same_token(pin: int, text: str, old, new) -> bool:
    """The new vocabulary has the same token at the same id (a shared tokenizer)."""
    if not 0 <= pin < new.info.vocab_size:
        return False
    return new.decode([pin]) == text and new.token_bytes(pin) == old.token_bytes(pin)
