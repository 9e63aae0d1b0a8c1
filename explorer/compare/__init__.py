"""Comparisons, Textual-free and torch-free: two models on the same token ids
(models.compare_models) and two branches of the prompt book (branches.compare_branches).
The app, the `compare` command and Python callers all use these."""

from explorer.compare.models import (CompareError, ModelComparison, PositionDiff, compare_models,
                                     vocabulary_mismatch)

__all__ = ["CompareError", "ModelComparison", "PositionDiff", "compare_models", "vocabulary_mismatch"]
