"""Display text for single tokens: whitespace and special tokens visible, partial UTF-8
shown as its bytes (<0xE2>) instead of a replacement character.

Shared by every backend: the local engine reads pieces from its transformers tokenizer,
the remote backends from what a server returns (a piece string, raw bytes, or decoded
text). Pure Python, no torch."""

from __future__ import annotations

import re

_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")
_VISIBLE = str.maketrans({" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"})


def _byte_level_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: printable stand-in character -> byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_BYTE_DECODER = _byte_level_decoder()


def bytes_as_text(raw: bytes) -> str:
    """UTF-8 text where valid; each byte of an incomplete sequence as <0xNN>."""
    out = raw.decode("utf-8", errors="backslashreplace")
    return re.sub(r"\\x([0-9a-f]{2})", lambda m: f"<0x{m.group(1).upper()}>", out)


def make_visible(text: str) -> str:
    text = text.translate(_VISIBLE)
    # Other control characters would be invisible (or move the cursor) on a terminal.
    return "".join(f"<0x{ord(c):02X}>" if ord(c) < 32 or ord(c) == 127 else c for c in text)


def piece_bytes(piece: str, byte_level: bool) -> bytes | None:
    """The bytes a vocabulary piece stands for, when its spelling says so: a SentencePiece
    byte token (<0xE2>), a GPT-2 byte-level piece, or a piece with ▁ for a space."""
    if _BYTE_TOKEN.fullmatch(piece):
        return bytes([int(piece[3:5], 16)])
    if byte_level and all(c in _BYTE_DECODER for c in piece):
        return bytes(_BYTE_DECODER[c] for c in piece)
    if "▁" in piece:
        return piece.replace("▁", " ").encode("utf-8")
    return None


def text_of_bytes(raw: bytes) -> str:
    """Display text of a non-special token from its raw bytes."""
    return make_visible(bytes_as_text(raw))


def text_of_piece(piece: str, byte_level: bool) -> str | None:
    """Display text from a vocabulary piece, or None when the piece alone does not say."""
    if _BYTE_TOKEN.fullmatch(piece):  # SentencePiece byte fallback
        return piece
    if byte_level and all(c in _BYTE_DECODER for c in piece):
        return text_of_bytes(bytes(_BYTE_DECODER[c] for c in piece))
    if "▁" in piece:  # SentencePiece word boundary marks a leading space
        return make_visible(piece.replace("▁", " "))
    return None


class TokenTexts:
    """Memoised display text per token id for one tokenizer."""

    def __init__(self, tokenizer):
        self._tok = tokenizer
        self._special = set(getattr(tokenizer, "all_special_ids", []) or [])
        decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
        self._byte_level = "ByteLevel" in repr(decoder)
        self._memo: dict[int, str] = {}
        self._bytes_memo: dict[int, bytes | None] = {}

    def __call__(self, token_id: int) -> str:
        token_id = int(token_id)
        text = self._memo.get(token_id)
        if text is None:
            text = self._memo[token_id] = self._compute(token_id)
        return text

    def raw_bytes(self, token_id: int) -> bytes | None:
        """The bytes this token contributes to decoded text; None for special tokens."""
        token_id = int(token_id)
        if token_id in self._bytes_memo:
            return self._bytes_memo[token_id]
        raw = self._bytes_memo[token_id] = self._compute_bytes(token_id)
        return raw

    def _decode_whole(self, token_id: int) -> str | None:
        """The token decoded alone, None when that is not whole characters (U+FFFD)."""
        text = self._tok.decode([token_id], skip_special_tokens=False,
                                clean_up_tokenization_spaces=False)
        return None if "\ufffd" in text else text

    def _compute_bytes(self, token_id: int) -> bytes | None:
        piece = self._tok.convert_ids_to_tokens(token_id)
        if piece is None or token_id in self._special:
            return None
        raw = piece_bytes(piece, self._byte_level)
        if raw is not None:
            return raw
        text = self._decode_whole(token_id)
        return None if text is None else text.encode("utf-8")

    def _compute(self, token_id: int) -> str:
        piece = self._tok.convert_ids_to_tokens(token_id)
        if piece is None:
            return f"<{token_id}>"
        if token_id in self._special:
            return piece
        shown = text_of_piece(piece, self._byte_level)
        if shown is not None:
            return shown
        text = self._decode_whole(token_id)
        if text is None:
            return piece
        return make_visible(text)
