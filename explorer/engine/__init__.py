"""The model side of Token Explorer: loads a causal LM, owns the KV caches, and hands up
plain values (see types.py). Never imports Textual."""

from .engine import Engine
from .errors import SyncCancelled
from .errors import EngineError, ModelLoadError, PromptTooLongError

__all__ = ["Engine", "EngineError", "ModelLoadError", "PromptTooLongError", "SyncCancelled"]
