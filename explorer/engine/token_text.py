"""The display-text logic is shared with the remote backends: it lives in
explorer.backend.token_text (importable without torch)."""

from explorer.backend.token_text import TokenTexts, make_visible

__all__ = ["TokenTexts", "make_visible"]
