"""The plain result types live in explorer.backend.types (importable without torch)."""

from explorer.backend.types import Candidate, ModelInfo, TokenRecord, TrackedSeries

__all__ = ["Candidate", "ModelInfo", "TokenRecord", "TrackedSeries"]
