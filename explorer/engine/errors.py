"""The engine's errors are the backend interface's (explorer.backend.errors); these names
stay for code written against the engine directly."""

from explorer.backend.errors import BackendError as EngineError
from explorer.backend.errors import Cancelled as SyncCancelled
from explorer.backend.errors import ModelLoadError, PromptTooLongError

__all__ = ["EngineError", "ModelLoadError", "PromptTooLongError", "SyncCancelled"]
