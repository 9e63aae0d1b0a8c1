"""Errors a user can cause, from any backend. str(exc) is one clear sentence meant for the
screen. Importable without torch.

Every message passes through explorer.backend.redact: a sentence that quotes a server (which
may echo the Authorization header) never carries the API key, on screen, on stderr, in a
traceback's repr or in a log."""

from explorer.backend.redact import redact
from explorer.errors import ExplorerError


class BackendError(ExplorerError):
    """Base class for everything a backend reports to the layers above."""

    def __init__(self, *args):
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ModelLoadError(BackendError):
    """The model could not be loaded: unknown or uncached id, no network, unknown parts."""


class PromptTooLongError(BackendError):
    """The prompt has more positions than the model supports."""


class Cancelled(BackendError):
    """Work stopped early because its `cancelled()` callback said so; nothing changed."""


class Unavailable(BackendError):
    """The backend cannot serve this view (e.g. influence on a remote server)."""
