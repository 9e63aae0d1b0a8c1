"""The backend interface (Protocol, capabilities, plain types, errors) and its factory.

Importing this package does not import torch: the UI and the session depend on it alone,
never on a concrete engine.
"""

from explorer.backend.errors import BackendError, Cancelled, ModelLoadError, PromptTooLongError, Unavailable
from explorer.backend.factory import close_servers, open_backend
from explorer.backend.protocol import Backend, Capabilities, Feature, IsCancelled, Progress
from explorer.backend.sampling import ChatTemplateError, ServerDraw
from explorer.backend.types import Candidate, ModelInfo, TokenRecord, TrackedSeries

__all__ = [
    "Backend", "BackendError", "Cancelled", "Candidate", "Capabilities", "Feature", "IsCancelled",
    "ModelInfo", "ModelLoadError", "Progress", "PromptTooLongError", "TokenRecord",
    "Unavailable", "close_servers", "open_backend",
    # the sampling side
    "ChatTemplateError", "TrackedSeries", "ServerDraw",
]
