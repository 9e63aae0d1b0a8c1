"""Start-up, run in a worker thread: open the backend and read the first prompt.

Kept apart from the app so that what the app does once (load, report) does not mix with
what it does on every key press. Errors become one sentence (LoadFailed), never a crash.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from explorer.backend import BackendError, open_backend
from explorer.config import DEFAULT_NAME, Settings
from explorer.session import PromptFileError
from explorer.session.start import open_prompt
from explorer.ui.messages import LoadFailed, Loaded, LoadProgress


def describe(error: BaseException) -> str:
    """One line for the screen: user errors as their own sentence, others with their type."""
    text = str(error) or type(error).__name__
    if isinstance(error, (BackendError, PromptFileError, ValueError)):
        return text
    return f"{type(error).__name__}: {text}"


def wanted_name(settings: Settings) -> str:
    """What start-up opens, as the header names it until a backend is open: the server
    (and its model, when one was named) with --server, else the local model."""
    server = settings.server
    if server.url:
        return f"{server.model} on {server.url}" if server.model else server.url
    return settings.model.name


def open_for_resume(settings: Settings, resume, progress) -> tuple[object, list[str]]:
    """The backend a resumed session opens on: its own model; when that cannot load (gone,
    damaged, a server that is down), the default model, whose tokenizer the prompts are then
    re-tokenised for (explorer.session.keep: by their saved text). (backend, warnings)."""
    try:
        return open_backend(settings, progress=progress), []
    except BackendError as exc:
        if settings.model.name == DEFAULT_NAME and not settings.server.url:
            raise
        why = str(exc).rstrip(".")
        progress(f"{why}; opening {DEFAULT_NAME} with the saved prompts instead…")
        fallback = replace(settings, model=replace(settings.model, name=DEFAULT_NAME),
                           server=replace(settings.server, url=""))
        return open_backend(fallback, progress=progress), [
            f"{why}; the session's {len(resume.prompts)} prompts are restored on {DEFAULT_NAME} instead."]


def load(post, settings: Settings, input_path: Path | None, backend=None, *,
         prompt_text: str | None = None, resume=None) -> None:
    """Post LoadProgress while working, then Loaded or LoadFailed. `backend`: one already
    open (tests share one); otherwise settings.model is opened. `prompt_text` (--prompt)
    is the prompt itself, instead of a file; the prompt opens as trace's and tree's do
    (explorer.session.start.open_prompt). `resume`: a saved session
    (explorer.session.keep.SessionState) that the main screen opens instead of a prompt."""
    try:
        warnings: list[str] = []
        if backend is None:
            post(LoadProgress(f"Loading model {wanted_name(settings)}…"))
            say = lambda text: post(LoadProgress(text))  # noqa: E731
            if resume is None:
                backend = open_backend(settings, progress=say)
            else:
                backend, warnings = open_for_resume(settings, resume, say)
        if resume is not None:
            post(Loaded(backend, resume.prompts[0].ids, [], warnings))
            return
        post(LoadProgress("Reading the prompt…"))
        start = open_prompt(backend, settings.prompts, text=prompt_text, path=input_path,
                            default=settings.resolve(settings.prompts.default))
        post(Loaded(backend, start.ids, start.errors, start.warnings,
                    messages=None if start.messages is None else list(start.messages),
                    original=start.original, origins=start.origins))
    except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence on screen
        post(LoadFailed(describe(exc)))
