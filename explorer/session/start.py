"""Which prompt the app opens on: --input FILE if usable, else the default prompt.

A bad --input does not stop the app: the error becomes a note for the screen and the default
prompt opens instead, so the user sees the model working and the reason in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Sequence

from explorer.session.files import PromptFileError, load_prompt_file

FALLBACK_TEXT = "Once upon a time"


@dataclass
class StartPrompt:
    ids: tuple[int, ...]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    text: str = ""  # the file's text ("" for the fallback)
    name: str = ""  # the file's name
    messages: tuple[dict, ...] | None = None  # a saved chat prompt's messages
    original: tuple[int, ...] | None = None  # a saved prompt's ctrl+r target
    origins: tuple[str, ...] | None = None  # a saved prompt's per-id provenance


def _check_length(loaded_ids, path: Path, max_context: int | None) -> None:
    if max_context is not None and len(loaded_ids) > max_context:
        raise PromptFileError(
            f"{path.name} has {len(loaded_ids)} tokens, more than the model's context of {max_context}."
        )


def read_start_prompt(
    encode: Callable[[str], list[int]],
    model: str,
    max_context: int | None,
    input_path: Path | None,
    default_path: Path,
    chat: Callable[[list[dict]], list[int]] | None = None,
    text: str | None = None,
    decode: Callable[[Sequence[int]], str] | None = None,
) -> StartPrompt:
    """`text` (--prompt): the prompt itself; the caller checked it is not blank. `decode`:
    the backend's, to warn when a saved file's ids do not decode to its text."""
    errors: list[str] = []
    warnings: list[str] = []
    if text is not None:
        ids = tuple(encode(text))
        if max_context is not None and len(ids) > max_context:
            errors.append(f"The --prompt text has {len(ids)} tokens, more than the model's "
                          f"context of {max_context}.")
        elif ids:
            return StartPrompt(ids, errors, warnings, text, "--prompt")
        else:
            errors.append("The --prompt text gives no tokens.")
    for path in ([input_path] if input_path else []) + [default_path]:
        try:
            loaded = load_prompt_file(path, encode, model, chat, decode=decode)
            _check_length(loaded.ids, path, max_context)
        except PromptFileError as exc:
            errors.append(str(exc))
            continue
        if loaded.warning:
            warnings.append(loaded.warning)
        if errors:
            errors[-1] += f" Opened {path.name} instead."
        return StartPrompt(loaded.ids, errors, warnings, loaded.text, path.name, loaded.messages,
                           loaded.original, loaded.origins)
    errors[-1] += f" Opened {FALLBACK_TEXT!r} instead."
    return StartPrompt(tuple(encode(FALLBACK_TEXT)), errors, warnings)


def special_text_notice(
    start: StartPrompt, special_ids: Collection[int], token_text: Callable[[int], str]
) -> str | None:
    """One sentence when the file's text spells a special token (e.g. "<|endoftext|>") that
    the tokenizer turned into that token, else None. The token is kept (chat templates and
    saved prompts rely on it); the user is told, and the panel draws special tokens apart."""
    spelled = sorted({token_text(t) for t in start.ids if t in special_ids and token_text(t) in start.text})
    if not spelled:
        return None
    return (f"{start.name} contains the text {', '.join(spelled)}, read as the special token "
            f"(shown in bold italic), not as plain text.")


def chat_messages(text: str, system: str = "") -> list[dict[str, str]]:
    """The prompt text as a user message, after the system message when there is one."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
