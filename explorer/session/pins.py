"""Pinning tracked tokens by typed text or by id (`M`), for the explorer core
(explorer.session.explorer): which ids a text or an id list pins or unpins, and the one
sentence when it is several tokens, none, or outside the vocabulary. The core holds the
pins (in its lane) and applies them with `retrack`."""

from __future__ import annotations

from explorer.session.token_ids import parse_token_ids


def pin_text(core, text: str) -> None:
    """Pin every token of `text` (M), or unpin them when that text is pinned already.
    Token ids as vLLM users give them: `#263` or `id 263` (several: `#263, #5`)."""
    by_id = parse_token_ids(text)
    if by_id is not None:
        pin_ids(core, by_id)
        return
    ids = core.backend.encode_plain(text)
    if not ids:
        core.say(f"The text {text!r} gives no tokens; nothing was pinned.", severity="warning")
        return
    pins = core.tracked_ids
    if all(t in pins for t in ids):  # the same text again: M unpins what it pinned
        core.retrack([t for t in pins if t not in ids])
        core.say(f"Unpinned {text!r}" + (f" ({len(ids)} tokens)." if len(ids) > 1 else "."),
                     timeout=3)
        return
    if len(ids) > 1:
        pieces = ", ".join(repr(core.backend.token_text(t)) for t in ids)
        core.say(f"{text!r} is not one token in the vocabulary but {len(ids)} ({pieces}); "
                     "all of them are tracked.", severity="warning", timeout=6)
    core.retrack(pins + [t for t in dict.fromkeys(ids) if t not in pins])

def pin_ids(core, ids: list[int]) -> None:
    """Pin tokens by id (M with `#263`), or unpin them when all are pinned already."""
    vocab = core.backend.info.vocab_size
    bad = next((t for t in ids if not 0 <= t < vocab), None)
    if bad is not None:
        core.say(f"Token id {bad} is outside the vocabulary ({vocab} tokens: 0 to {vocab - 1}); "
                     "nothing was pinned.", severity="warning")
        return
    pins = core.tracked_ids
    if all(t in pins for t in ids):
        core.retrack([t for t in pins if t not in ids])
        return
    core.retrack(pins + [t for t in dict.fromkeys(ids) if t not in pins])
