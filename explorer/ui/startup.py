"""Start-up, run in a worker thread: open the backend and read the first prompt.

Kept apart from the app so that what the app does once (load, report) does not mix with
what it does on every key press. Errors become one sentence (LoadFailed), never a crash.
"""

from __future__ import annotations

from pathlib import Path

from explorer.backend import BackendError, ChatTemplateError, Feature, open_backend
from explorer.config import Settings
from explorer.session import PromptFileError, read_start_prompt
from explorer.session.start import FALLBACK_TEXT, chat_messages, special_text_notice
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


def load(post, settings: Settings, input_path: Path | None, backend=None, *,
         prompt_text: str | None = None) -> None:
    """Post LoadProgress while working, then Loaded or LoadFailed. `backend`: one already
    open (tests share one); otherwise settings.model is opened. `prompt_text` (--prompt)
    is the prompt itself, instead of a file."""
    try:
        if backend is None:
            post(LoadProgress(f"Loading model {wanted_name(settings)}…"))
            backend = open_backend(settings, progress=lambda text: post(LoadProgress(text)))
        post(LoadProgress("Reading the prompt…"))
        # The local tokenizer's template or the server's.
        chat = None if backend.capabilities.missing(Feature.CHAT) else backend.chat_ids
        start = read_start_prompt(
            backend.encode,
            backend.info.name,
            backend.info.max_context,
            input_path,
            settings.resolve(settings.prompts.default),
            chat,
            text=prompt_text, decode=backend.decode,
        )
        warnings = list(start.warnings)
        notice = special_text_notice(start, backend.special_ids, backend.token_text)
        if notice:
            warnings.append(notice)
        ids, messages = start.ids, start.messages
        if messages is None and settings.prompts.chat:
            ids, messages = wrap_as_chat(chat, start.text or FALLBACK_TEXT, settings.prompts.system,
                                         start, backend.info.max_context)
        kept = ids == start.ids  # a saved prompt's provenance, unless it was wrapped anew
        post(Loaded(backend, ids, start.errors, warnings,
                    messages=None if messages is None else list(messages),
                    original=start.original if kept else None, origins=start.origins if kept else None))
    except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence on screen
        post(LoadFailed(describe(exc)))


def wrap_as_chat(chat, text: str, system: str, start, max_context: int | None):
    """(ids, messages) of the prompt wrapped in the chat template, or the plain prompt with
    one sentence in start.errors when that cannot be done."""
    if chat is None:
        start.errors.append("Chat prompts are not available on this backend; opened the plain prompt.")
        return start.ids, None
    messages = chat_messages(text, system)
    try:
        ids = tuple(chat(messages))
    except ChatTemplateError as exc:
        start.errors.append(f"{exc} Opened the plain prompt instead.")
        return start.ids, None
    if max_context is not None and len(ids) > max_context:
        start.errors.append(f"The chat prompt has {len(ids)} tokens, more than the model's context "
                            f"of {max_context}; opened the plain prompt instead.")
        return start.ids, None
    return ids, messages
