"""Token ids typed where text is expected (`M` in the app): `#263`, `id 263`, `id:263`, or
several separated by commas, as vLLM users give `logprob_token_ids`."""

from __future__ import annotations

import re

_ID = re.compile(r"\s*(?:#|id[\s:]*)(\d+)\s*", re.IGNORECASE)


def parse_token_ids(text: str) -> list[int] | None:
    """`#263`, `id 263`, `id:263`, or several of them separated by commas: the ids; any
    other text: None (it is pinned as text)."""
    parts = text.split(",")
    matches = [_ID.fullmatch(p) for p in parts]
    if not text.strip() or not all(matches):
        return None
    return [int(m.group(1)) for m in matches]
