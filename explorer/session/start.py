"""Opening a prompt: the one way the app, `trace` and `tree` turn the command line and
config.toml's [prompts] into token ids (open_prompt).

The sources, in order: --prompt TEXT, else --input FILE (.txt, or a saved .json with its
exact ids), else the default prompt file (the app and tree). Then, with --chat or [prompts]
chat, the text becomes the user message of the model's chat template (after --system);
a backend without a template gets the plain prompt and one warning sentence, everywhere.
Then --prefix TEXT is forced after it (its ids marked "forced"). Every length is checked
by explorer.context_limit.

A bad source does not stop the app (strict=False): the error becomes a note for the screen
and the default prompt opens instead, so the user sees the model working and the reason in
one place. The commands (strict=True) refuse it instead: PromptFileError, one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Collection, Sequence

from explorer.context_limit import context_error
from explorer.session.book import FORCED, PROMPT
from explorer.session.files import PromptFileError, load_prompt_file
from explorer.session.gemma_files import gemma_ids, read_gemma

FALLBACK_TEXT = "Once upon a time"


@dataclass
class StartPrompt:
    ids: tuple[int, ...]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    text: str = ""  # the file's text ("" for the fallback); after open_prompt: the ids' text
    name: str = ""  # the file's name
    messages: tuple[dict, ...] | None = None  # a chat prompt's messages
    original: tuple[int, ...] | None = None  # a saved prompt's ctrl+r target
    origins: tuple[str, ...] | None = None  # a saved prompt's per-id provenance
    forced: int = 0  # how many ids at the end --prefix forced


def _refuse(errors: list[str], strict: bool) -> None:
    if strict and errors:
        raise PromptFileError(errors[0])


def _note(start: StartPrompt, why: str, then: str, strict: bool) -> None:
    """A command refuses (PromptFileError, the sentence alone); the app notes it and goes on."""
    if strict:
        raise PromptFileError(why)
    start.errors.append(f"{why} {then}")


def read_start_prompt(
    encode: Callable[[str], list[int]],
    model: str,
    max_context: int | None,
    input_path: Path | None,
    default_path: Path | None,
    chat: Callable[[list[dict]], list[int]] | None = None,
    text: str | None = None,
    strict: bool = False,
    decode: Callable[[Sequence[int]], str] | None = None,
) -> StartPrompt:
    """`text` (--prompt): the prompt itself; the caller checked it is not blank. A source
    that cannot open is a note and the next one opens (`default_path`, then FALLBACK_TEXT);
    strict: PromptFileError instead (`default_path` None: no default to fall back on).
    `decode`: the backend's, to warn when a saved file's ids do not decode to its text."""
    errors: list[str] = []
    warnings: list[str] = []
    if text is not None:
        ids = tuple(encode(text))
        if why := context_error(len(ids), max_context, model):
            errors.append(why)
        elif ids:
            return StartPrompt(ids, errors, warnings, text, "--prompt")
        else:
            errors.append("The --prompt text gives no tokens.")
        _refuse(errors, strict)
    for path in ([input_path] if input_path else []) + ([default_path] if default_path else []):
        try:
            loaded = load_prompt_file(path, encode, model, chat, decode=decode)
            if why := context_error(len(loaded.ids), max_context, model):
                raise PromptFileError(why)
        except PromptFileError as exc:
            errors.append(str(exc))
            _refuse(errors, strict)
            continue
        if loaded.warning:
            warnings.append(loaded.warning)
        if errors:
            errors[-1] += f" Opened {path.name} instead."
        return StartPrompt(loaded.ids, errors, warnings, loaded.text, path.name, loaded.messages,
                           loaded.original, loaded.origins)
    if not errors:  # (strict, with neither text nor a file: the caller asks for one first)
        raise PromptFileError("Give a prompt with --prompt TEXT or -i FILE.")
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


def open_prompt(backend, prompts, *, text: str | None = None, path: Path | None = None,
                default: Path | None = None, strict: bool = False) -> StartPrompt:
    """The prompt the app, `trace` and `tree` open: `text` (--prompt) or `path` (--input),
    else `default`; wrapped in the chat template when `prompts.chat` (config.PromptSettings),
    then `prompts.prefix` forced after it. The app (strict=False) gets notes in
    start.errors / start.warnings; a command (strict=True) gets PromptFileError (one
    sentence) for anything but the no-template warning. start.text is the ids' text."""
    from explorer.backend import Feature

    info = backend.info
    caps = backend.capabilities
    # The local tokenizer's template or the server's.
    chat = None if caps.missing(Feature.CHAT) else backend.chat_ids
    gemma = read_gemma(path) if text is None else None  # Gemma's files (gemma_files.py)
    if gemma is not None:
        start = _gemma_start(backend, gemma, path, strict)
    else:
        start = read_start_prompt(backend.encode, info.name, info.max_context, path, default, chat,
                                  text=text, strict=strict, decode=backend.decode)
    if notice := special_text_notice(start, backend.special_ids, backend.token_text):
        start.warnings.append(notice)
    if start.messages is None and prompts.chat:
        start = _wrap_as_chat(chat, backend.decode, start, prompts.system, info, strict)
    elif start.messages is not None:  # a saved chat prompt: its ids are the template's
        start.text = backend.decode(start.ids)
    if prompts.prefix:
        plain = backend.encode_plain if caps.sampling or caps.server_sampling else None
        start = _force_prefix(plain, start, prompts.prefix, info, strict)
    return start


def _gemma_start(backend, gemma, path: Path, strict: bool) -> StartPrompt:
    """A Gemma logprobs file's prompt + response tokens, or a Gemma tree's prompt."""
    ids, warning = gemma_ids(gemma, backend.encode, backend.encode_plain)
    if why := context_error(len(ids), backend.info.max_context, backend.info.name):
        raise PromptFileError(why)  # (the app shows it where it shows a bad file)
    if not ids:
        raise PromptFileError(f"Input file {path} gives no tokens.")
    return StartPrompt(ids, warnings=[warning] if warning else [], text=gemma.prompt + "".join(gemma.tokens),
                       name=Path(path).name)


def _wrap_as_chat(chat, decode, start: StartPrompt, system: str, info, strict: bool) -> StartPrompt:
    """The start prompt as the user message of the chat template; the plain prompt and one
    warning when the backend has no template (the same rule for the app and the commands)."""
    from explorer.backend import ChatTemplateError

    messages = chat_messages(start.text or FALLBACK_TEXT, system)
    try:
        if chat is None:
            raise ChatTemplateError("Chat prompts are not available on this backend.")
        ids = tuple(chat(messages))
    except ChatTemplateError as exc:
        start.warnings.append(f"{str(exc).rstrip('.')}; opened the plain prompt instead.")
        return start
    if why := context_error(len(ids), info.max_context, info.name):
        _note(start, why, "Opened the plain prompt instead.", strict)
        return start
    # A saved prompt's provenance is its own ids'; the template's ids are all prompt.
    return replace(start, ids=ids, messages=tuple(messages), original=None, origins=None,
                   text=decode(ids))


def _force_prefix(plain, start: StartPrompt, prefix: str, info, strict: bool) -> StartPrompt:
    """The prompt with --prefix's tokens (the text encoded alone, no special tokens, as the
    app's forced text) appended and marked forced; a note (app) or refusal (command)
    when that cannot be done."""
    if plain is None:
        why = "--prefix needs a backend that can force text; this one cannot."
    elif not (forced := tuple(plain(prefix))):
        why = "The --prefix text gives no tokens."
    else:
        why = context_error(len(start.ids) + len(forced), info.max_context, info.name)
    if why:
        _note(start, why, "Opened the prompt without it.", strict)
        return start
    origins = start.origins or (PROMPT,) * len(start.ids)
    return replace(start, ids=start.ids + forced, origins=origins + (FORCED,) * len(forced),
                   original=start.original or start.ids, forced=len(forced), text=start.text + prefix)
