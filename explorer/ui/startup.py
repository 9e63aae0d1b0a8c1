"""Start-up, run in a worker thread: open the backend and read the first prompt.

Kept apart from the app so that what the app does once (load, report) does not mix with
what it does on every key press. Errors become one sentence (LoadFailed), never a crash.
"""

from __future__ import annotations

from pathlib import Path

from explorer.backend import BackendError, open_backend
from explorer.config import Settings
from explorer.session import PromptFileError, read_start_prompt
from explorer.session.start import special_text_notice
from explorer.ui.messages import LoadFailed, Loaded, LoadProgress


def describe(error: BaseException) -> str:
    """One line for the screen: user errors as their own sentence, others with their type."""
    text = str(error) or type(error).__name__
    if isinstance(error, (BackendError, PromptFileError, ValueError)):
        return text
    return f"{type(error).__name__}: {text}"


def load(post, settings: Settings, input_path: Path | None, backend=None) -> None:
    """Post LoadProgress while working, then Loaded or LoadFailed. `backend`: one already
    open (tests share one); otherwise settings.model is opened."""
    try:
        if backend is None:
            post(LoadProgress(f"Loading model {settings.model.name}…"))
            backend = open_backend(settings, progress=lambda text: post(LoadProgress(text)))
        post(LoadProgress("Reading the prompt…"))
        start = read_start_prompt(
            backend.encode,
            backend.info.name,
            backend.info.max_context,
            input_path,
            settings.resolve(settings.prompts.default),
        )
        warnings = list(start.warnings)
        notice = special_text_notice(start, backend.special_ids, backend.token_text)
        if notice:
            warnings.append(notice)
        post(Loaded(backend, start.ids, start.errors, warnings))
    except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence on screen
        post(LoadFailed(describe(exc)))
