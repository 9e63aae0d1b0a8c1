"""Remote backends: the same explorer on a vLLM or llama.cpp server (OpenAI-compatible).

`open_remote(url, ...)` asks the server what it is and what it serves, and returns the
matching backend. Numbers come from the server; see numbers.py for what a truncated top-K
list can and cannot say.
"""

from __future__ import annotations

from explorer.backend.errors import ModelLoadError
from explorer.remote.base import RemoteBackend
from explorer.remote.client import RemoteError, ServerClient, Timeouts, api_key
from explorer.remote.llama_cpp import LlamaCppBackend
from explorer.remote.vllm import VLLMBackend

__all__ = ["LlamaCppBackend", "RemoteBackend", "RemoteError", "ServerClient", "Timeouts",
           "VLLMBackend", "open_remote"]


def open_remote(url: str, *, model: str | None = None, tokens_to_show: int = 30,
                timeouts: Timeouts = Timeouts(), key: str | None = None,
                notice=None) -> RemoteBackend:
    """A backend for the server at `url`. The model is the one the server lists unless
    `model` names another. Raises ModelLoadError / RemoteError with one sentence.
    notice(text): retry notices while connecting (the caller sets `client.notice` for
    later ones)."""
    client = ServerClient(url, key=api_key() if key is None else key, timeouts=timeouts,
                          notice=notice)
    try:
        return _connect(client, model, tokens_to_show)
    except BaseException:
        client.close()
        raise
    finally:
        client.notice = None


def _connect(client: ServerClient, model: str | None, tokens_to_show: int) -> RemoteBackend:
    listing = client.get("/v1/models")
    cards = listing.get("data") if isinstance(listing, dict) else None
    cards = [c for c in cards if isinstance(c, dict)] if isinstance(cards, list) else []
    if not cards:
        raise ModelLoadError(f"The server at {client.where} lists no models at /v1/models.")
    names = [str(c.get("id")) for c in cards]
    if model is not None and model not in names:
        raise ModelLoadError(
            f"The server at {client.where} does not serve {model!r}; it serves {', '.join(names)}.")
    card = cards[names.index(model)] if model is not None else cards[0]
    owner = str(card.get("owned_by", ""))
    if owner == "vllm":
        return VLLMBackend.connect(client, str(card["id"]), card.get("max_model_len"),
                                   tokens_to_show=tokens_to_show)
    if owner == "llamacpp" or isinstance(card.get("meta"), dict):
        return LlamaCppBackend.connect(client, str(card["id"]), card.get("meta") or {},
                                       tokens_to_show=tokens_to_show)
    raise ModelLoadError(
        f"The server at {client.where} is neither vLLM nor llama.cpp (its models are owned by {owner!r}).")
