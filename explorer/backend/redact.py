"""The one place secrets are taken out of text meant for people: every error sentence
(BackendError redacts its own message), every notice and every line `trace` prints passes
through `redact`. A server may echo what we sent it (an error that repeats the
Authorization header), so anything that came from a server is suspect.

What is hidden: the API key's value (from the environment variables that hold it, and any
key a client was given), `Bearer <anything>`, and strings shaped like API keys (`sk-...`,
`hf_...`). Importable without torch or httpx.
"""

from __future__ import annotations

import os
import re
import threading

KEY_VARIABLES = ("TOKEN_EXPLORER_API_KEY", "OPENAI_API_KEY")
HIDDEN = "(key hidden)"  # not [..]: Textual would read that as markup and drop it

_BEARER = re.compile(r"(?i)\b(bearer)(\s+|%20|\+)(?!\(key hidden\))[^\s\"',;]+")  # idempotent
# Common API-key shapes (OpenAI/Anthropic sk-..., Stripe-like pk-/rk-, Hugging Face hf_...),
# long enough not to hide an ordinary word such as "hf_transfer".
_KEY_SHAPE = re.compile(r"(?<![A-Za-z0-9])(?:sk|pk|rk|hf)[-_][A-Za-z0-9][A-Za-z0-9._~+/=-]{11,}")
_MIN_SECRET = 4  # shorter values would blank ordinary words

_lock = threading.Lock()
_secrets: set[str] = set()


def remember_secret(value: str | None) -> None:
    """A secret to hide from now on (the key a client sends)."""
    if value and len(value.strip()) >= _MIN_SECRET:
        with _lock:
            _secrets.add(value.strip())


def _known() -> list[str]:
    env = [os.environ.get(name, "").strip() for name in KEY_VARIABLES]
    with _lock:
        values = _secrets | {v for v in env if len(v) >= _MIN_SECRET}
    return sorted(values, key=len, reverse=True)  # a key that contains another goes first


def redact(text: str) -> str:
    """text with every secret replaced by "(key hidden)"."""
    if not isinstance(text, str):
        text = str(text)
    for secret in _known():
        text = text.replace(secret, HIDDEN)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {HIDDEN}", text)
    return _KEY_SHAPE.sub(HIDDEN, text)


def looks_like_key(text: str) -> bool:
    """Whether text is (or holds) something to keep off the screen: a known key, a key
    shape, or one long run of letters and digits with no dots, slashes or colons (what a
    key pasted where a URL belongs looks like)."""
    text = text.strip()
    if redact(text) != text:
        return True
    return len(text) >= 20 and re.fullmatch(r"[A-Za-z0-9_\-+=]+", text) is not None
