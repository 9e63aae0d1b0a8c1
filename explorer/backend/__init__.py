"""The backend interface (Protocol, capabilities, plain types, errors) and its factory.

Importing this package does not import torch: the UI and the session depend on it alone,
never on a concrete engine.
"""

from explorer.backend.errors import BackendError, Cancelled, ModelLoadError, PromptTooLongError, Unavailable
from explorer.backend.factory import close_servers, open_backend
from explorer.backend.protocol import Backend, Capabilities, IsCancelled, Progress
from explorer.backend.sampling import (
    ChatTemplateError,
    SamplingBackend,
    ServerDraw,
    ServerSampling,
    chat_renderer,
    samples_on_server,
    supports_sampling,
)
from explorer.backend.types import Candidate, ModelInfo, TokenRecord, TrackedSeries

__all__ = [
    "Backend", "BackendError", "Cancelled", "Candidate", "Capabilities", "IsCancelled",
    "ModelInfo", "ModelLoadError", "Progress", "PromptTooLongError", "TokenRecord",
    "Unavailable", "close_servers", "open_backend",
    # the sampling side
    "ChatTemplateError", "SamplingBackend", "TrackedSeries", "supports_sampling",
    "ServerDraw", "ServerSampling", "samples_on_server", "chat_renderer",
]
