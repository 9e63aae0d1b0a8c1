"""Every error a user can cause, as one family: `ExplorerError` (str() is one sentence, the
same the app shows), so a script or a notebook can catch them all with one `except`, or
one kind by its own class. The kinds are the ones the layers already raise, re-exported
here; this module imports nothing at load time (the backend, the config and the sampler
derive their errors from ExplorerError, so they import this leaf, never the other way).

    ExplorerError
    ├── ConfigError        a setting or a keyword argument out of range (config.toml, flags)
    ├── UsageError         a request that cannot be done as asked (a bad flag value, no prompt)
    ├── PromptFileError    a prompt file that cannot be read or saved
    ├── ExportError        an output file that cannot be written
    ├── SamplingError      a sampler setting out of range
    ├── ConstraintError    a constraint that does not compile or cannot be met
    ├── TreeSettingsError  a tree setting out of range
    ├── BackendError       the model or server: ModelLoadError, PromptTooLongError,
    │                      Unavailable (a view this backend does not serve), Cancelled,
    │                      ChatTemplateError
    └── MissingPackage     an optional package is not installed (pandas for to_pandas())
"""

from __future__ import annotations

import importlib


class ExplorerError(Exception):
    """Base class of every error a user can cause; str() is one sentence."""


class ExplorerWarning(UserWarning):
    """A warning the commands print as `warning: ...` (e.g. a --track text that is several
    tokens, a model without a chat template); the Python API issues it with warnings.warn."""


class MissingPackage(ExplorerError, ImportError):
    """An optional package a call needs (pandas for to_pandas()) is not installed."""


# name -> module that defines it (imported on first use: see the docstring).
_WHERE = {
    "BackendError": "explorer.backend.errors",
    "ModelLoadError": "explorer.backend.errors",
    "PromptTooLongError": "explorer.backend.errors",
    "Cancelled": "explorer.backend.errors",
    "Unavailable": "explorer.backend.errors",
    "ChatTemplateError": "explorer.backend.sampling",
    "ConfigError": "explorer.config",
    "UsageError": "explorer.cli",
    "PromptFileError": "explorer.session.files",
    "ExportError": "explorer.core.export",
    "SamplingError": "explorer.sampling.settings",
    "ConstraintError": "explorer.sampling.constraint",
    "TreeSettingsError": "explorer.tree.rule",
}

__all__ = ["ExplorerError", "ExplorerWarning", "MissingPackage", *_WHERE]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'explorer.errors' has no attribute {name!r}")
