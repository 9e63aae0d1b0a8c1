"""open_backend(settings): the one place that picks a backend implementation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from explorer.backend.protocol import Backend

if TYPE_CHECKING:  # explorer.config is plain data; typed here without importing it at run time
    from explorer.config import Settings


def open_backend(settings: Settings, *, progress: Callable[[str], None] | None = None,
                 influence: bool = True, notice: Callable[[str], None] | None = None) -> Backend:
    """A ready backend for `settings`. Raises BackendError
    (ModelLoadError, ...) with one sentence for the screen. May take a while: call it from a
    worker thread. influence=False: a backend that never computes attention influence
    (capabilities.influence is False), so each step is a bare forward pass (headless trace);
    a server computes none anyway. notice: where a server's retry notices go while
    connecting (default: progress)."""
    if settings.server.url:
        return _open_server(settings, progress, notice or progress)
    # Imported here: the engine loads torch, which the UI must not pay for at start-up.
    from explorer.engine import Engine

    return Engine.load(
        settings.model,
        tokens_to_show=settings.display.tokens_to_show,
        influence_heads=settings.display.influence_heads,
        layer_prob=settings.layer_prob,
        progress=progress,
        influence=influence,
        attribution_steps=settings.attribution.n_steps,
        attribution_baseline=settings.attribution.baseline,
    )


def _open_server(settings: Settings, progress: Callable[[str], None] | None,
                 notice: Callable[[str], None] | None) -> Backend:
    from explorer.remote import Timeouts, open_remote

    server = settings.server
    if progress is not None:
        progress("Connecting to the server…")
    return open_remote(
        server.url,
        model=server.model or None,
        tokens_to_show=settings.display.tokens_to_show,
        timeouts=Timeouts(connect=server.connect_timeout, read=server.read_timeout,
                          retries=server.retries),
        notice=notice,
    )


def close_servers() -> None:
    """Close every open server client: requests waiting on a server end at once (with
    Cancelled), so quitting never waits for one. Nothing to do when no server was used."""
    import sys

    client = sys.modules.get("explorer.remote.client")
    if client is not None:
        client.close_all()
