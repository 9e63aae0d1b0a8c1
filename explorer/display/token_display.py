"""How prompt tokens read on screen: byte tokens grouped into the characters they form,
special tokens marked, partial characters marked. Pure functions, no Textual.

Byte-level tokenizers split a character such as "é" (bytes C3 A9) or an emoji (four bytes)
over several tokens. Shown one token at a time that is `<0xC3><0xA9>`; here consecutive
tokens whose bytes only make sense together become one *group* that reads as its text.
The group stays one unit on screen (one colour, underlined), so token boundaries outside it
are still visible; a token left holding part of a character (the prompt ends mid-character,
or a stray continuation byte) shows its bytes as `<C3…>`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import Enum

_VISIBLE = str.maketrans({" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"})


class Kind(Enum):
    TOKEN = "token"  # one token, whole characters
    GROUP = "group"  # several tokens that together form whole characters
    PARTIAL = "partial"  # bytes that form no whole character
    SPECIAL = "special"  # a special token (BOS, EOS, chat markers)


@dataclass(frozen=True)
class Segment:
    text: str  # display text (whitespace visible)
    tokens: tuple[int, ...]  # prompt positions it covers
    kind: Kind


def visible(text: str) -> str:
    text = text.translate(_VISIBLE)
    return "".join(f"<0x{ord(c):02X}>" if ord(c) < 32 or ord(c) == 127 else c for c in text)


def _bytes_text(raw: bytes) -> str:
    """Whole characters as text; each byte of an unfinished or broken one as <XX…>."""
    parts, rest = [], raw
    while rest:
        try:
            parts.append(visible(rest.decode("utf-8")))
            break
        except UnicodeDecodeError as exc:
            parts.append(visible(rest[: exc.start].decode("utf-8")))
            parts.extend(f"<{b:02X}…>" for b in rest[exc.start : exc.end])
            rest = rest[exc.end :]
    return "".join(parts)


def _state(raw: bytes) -> str:
    """'whole', 'open' (ends inside a character: more bytes may finish it) or 'broken'."""
    try:
        raw.decode("utf-8")
        return "whole"
    except UnicodeDecodeError as exc:
        return "open" if exc.end == len(raw) and exc.reason == "unexpected end of data" else "broken"


def segments(
    ids: Sequence[int],
    texts: Sequence[str],
    token_bytes: Callable[[int], bytes | None],
    special_ids: Collection[int] = (),
) -> list[Segment]:
    """Split a prompt (ids and their one-token display texts) into what the panel draws."""
    out: list[Segment] = []
    raw = [None if t in special_ids else token_bytes(t) for t in ids]
    i, n = 0, len(ids)
    while i < n:
        if ids[i] in special_ids:
            out.append(Segment(texts[i], (i,), Kind.SPECIAL))
            i += 1
            continue
        if raw[i] is None or _state(raw[i]) == "whole":
            out.append(Segment(texts[i], (i,), Kind.TOKEN))
            i += 1
            continue
        buf, j = raw[i], i + 1
        while _state(buf) == "open" and j < n and raw[j] is not None:
            buf += raw[j]
            j += 1
        if _state(buf) == "whole":
            out.append(Segment(visible(buf.decode("utf-8")), tuple(range(i, j)), Kind.GROUP))
            i = j
        else:
            out.append(Segment(_bytes_text(raw[i]), (i,), Kind.PARTIAL))
            i += 1
    return out


def column_labels(segs: Sequence[Segment], n: int) -> list[str]:
    """One short label per token (heatmap columns): a group's text on its first token and
    "+" on the tokens that continue it."""
    labels = [""] * n
    for seg in segs:
        first, *rest = seg.tokens
        labels[first] = seg.text
        for k in rest:
            labels[k] = "+"
    return labels


def group_value(values: Sequence[float | None], tokens: Sequence[int], *, joint: bool) -> float | None:
    """The colour value of a segment. joint=True (probabilities): the product, i.e. the
    probability of the whole group; otherwise the value at the group's first token."""
    picked = [values[k] if k < len(values) else None for k in tokens]
    if not joint or len(picked) == 1:
        return picked[0]
    if any(v is None for v in picked):
        return None
    product = 1.0
    for v in picked:
        product *= v
    return product
