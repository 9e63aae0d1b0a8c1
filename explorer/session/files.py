"""Saving prompts to prompts/ and reading them back token-for-token.

A saved prompt is two files with one stem: `<stem>.txt` holds the exact decoded text (for
people and other tools) and `<stem>.json` holds {"model", "token_ids", "text"} (for us),
because re-tokenising text does not always give back the same ids. A chat prompt also
holds "messages" ([{"role", "content"}]), which another model renders with its own template.
The .json also keeps "original_ids" (what ctrl+r resets to) and "origins" (per id: prompt,
picked, sampled or forced); a file without them opens with its ids as the original.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from explorer.atomic import write_text_atomic
from explorer.errors import ExplorerError


class PromptFileError(ExplorerError):
    """A prompt file the user pointed at cannot be used; str() is one sentence."""


@dataclass(frozen=True)
class LoadedPrompt:
    ids: tuple[int, ...]
    text: str
    warning: str | None = None  # e.g. saved with another model: re-tokenised
    messages: tuple[dict, ...] | None = None  # a chat prompt's messages
    original: tuple[int, ...] | None = None  # what ctrl+r resets to (None: the ids)
    origins: tuple[str, ...] | None = None  # how each id was added (None: all the prompt)


def slug(text: str, max_len: int = 40) -> str:
    """File-name-safe start of the text; empty when nothing usable is left."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:max_len].rstrip("-")


def _free_stem(folder: Path, stem: str) -> str:
    candidate, n = stem, 2
    while any(os.path.lexists(folder / f"{candidate}{end}") for end in (".txt", ".json", ".jsonl")):
        candidate, n = f"{stem}-{n}", n + 1
    return candidate


def _name_text(text: str, messages: Sequence[dict] | None) -> str:
    """What a file is named after: the user's last message in a chat prompt (the text
    starts with the template's special tokens, e.g. "<|im_start|>system"), else the text."""
    users = [m["content"] for m in messages or () if m.get("role") == "user" and slug(m["content"])]
    return users[-1] if users else text


def save_prompt(folder: Path, text: str, ids: Sequence[int], model: str,
                messages: Sequence[dict] | None = None, *, original: Sequence[int] | None = None,
                origins: Sequence[str] | None = None,
                branched_from: tuple[int, int] | None = None) -> Path:
    """Write <folder>/<stem>.txt and .json; return the .txt path. Raises PromptFileError.
    `original` (the ids ctrl+r resets to) and `origins` (how each id was added) are kept in
    the .json so that reopening it restores them."""
    folder = Path(folder)
    stem = slug(_name_text(text, messages)) or time.strftime("prompt-%Y%m%d-%H%M%S")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stem = _free_stem(folder, stem)
        txt, meta = folder / f"{stem}.txt", folder / f"{stem}.json"
        # Both files atomically, the .json last: a reader that finds the .json finds both.
        write_text_atomic(txt, text)
        record = {"model": model, "token_ids": [int(i) for i in ids], "text": text}
        if original is not None:
            record["original_ids"] = [int(i) for i in original]
        if origins is not None:
            record["origins"] = list(origins)
        if branched_from is not None:  # a branch (issue 23): its parent prompt and position
            record["branched_from"] = {"prompt": int(branched_from[0]), "position": int(branched_from[1])}
        if messages is not None:
            record["messages"] = [{"role": m["role"], "content": m["content"]} for m in messages]
        write_text_atomic(meta, json.dumps(record, ensure_ascii=False, indent=1) + "\n")
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise PromptFileError(f"Could not save the prompt to {folder}: {reason}.") from exc
    return txt


# No model this app runs has a context near this (1 MiB of text is about 250,000 tokens); a
# saved .json holds its ids too. Checked before reading, so a huge file costs nothing.
MAX_PROMPT_BYTES = 4 * 1024 * 1024


def _read_text(path: Path) -> str:
    try:
        if (size := path.stat().st_size) > MAX_PROMPT_BYTES:
            raise PromptFileError(f"Input file {path} is {size / 2**20:.1f} MiB; a prompt file may be "
                                  f"at most {MAX_PROMPT_BYTES // 2**20} MiB.")
        data = path.read_bytes()
    except FileNotFoundError:
        raise PromptFileError(f"Input file {path} does not exist.") from None
    except IsADirectoryError:
        raise PromptFileError(f"Input file {path} is a folder, not a file.") from None
    except OSError as exc:
        raise PromptFileError(f"Input file {path} cannot be read: {exc.strerror}.") from None
    if b"\0" in data:
        raise PromptFileError(f"Input file {path} looks binary (it contains NUL bytes).")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PromptFileError(f"Input file {path} is not UTF-8 text.") from None


# Token ids are vocabulary rows: never negative, and no vocabulary has 2**31 of them (a
# bigger number reached torch as an overflow). JSON's true/false are not ids either.
MAX_ID = 2**31 - 1


def _is_ids(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= MAX_ID for i in value)


def _read_json(path: Path) -> dict:
    try:
        record = json.loads(_read_text(path))
    except json.JSONDecodeError:
        raise PromptFileError(f"Input file {path} is not valid JSON.") from None
    except RecursionError:  # e.g. 100,000 nested [: json's parser recurses per level
        raise PromptFileError(f"Input file {path} is not a saved prompt (its JSON nests too deeply).") from None
    except ValueError:  # an integer of thousands of digits (int's conversion limit)
        raise PromptFileError(f"Input file {path} holds a number too long to read.") from None
    ids = record.get("token_ids") if isinstance(record, dict) else None
    text = record.get("text") if isinstance(record, dict) else None
    if not isinstance(ids, list) or not isinstance(text, str):
        raise PromptFileError(f"Input file {path} is not a saved prompt (needs token_ids and text).")
    if not _is_ids(ids):
        raise PromptFileError(f"Input file {path} has token_ids that are not whole numbers from 0 "
                              f"to {MAX_ID}.")
    messages = record.get("messages")
    if messages is not None and not (isinstance(messages, list) and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages)):
        raise PromptFileError(f"Input file {path} has messages that are not a list of {{role, content}}.")
    return record


ORIGINS = ("prompt", "picked", "sampled", "forced")  # explorer.session.book's kinds


def _provenance(record: dict, ids: tuple[int, ...]):
    """(original, origins) from a saved record when they fit its ids, else (None, None):
    files saved before these fields existed (or edited by hand) open as before."""
    original, origins = record.get("original_ids"), record.get("origins")
    if not (original and _is_ids(original)):
        original = None
    if not (isinstance(origins, list) and len(origins) == len(ids) and all(o in ORIGINS for o in origins)):
        origins = None
    return (None if original is None else tuple(original),
            None if origins is None else tuple(origins))


def ids_text_warning(name: str, ids: Sequence[int], text: str,
                     decode: Callable[[Sequence[int]], str]) -> str | None:
    """One sentence when saved ids do not decode to the saved text, else None.

    save_prompt's text is the backend's decode(ids) (special tokens kept, spaces as they
    are), so the same decode of the same ids with the same tokenizer gives it back exactly;
    a difference means another tokenizer under the same model name, or a hand edit. The
    ids are still used (a prompt is its ids); the user is told, since what opens is not the
    text the file shows. A decode that fails says nothing here: the ids' own check does.
    """
    try:
        decoded = decode(list(ids))
    except Exception:  # noqa: BLE001 - e.g. an id past the vocabulary, refused later in its own words
        return None
    if decoded == text:
        return None
    return (f"{name}: its token_ids decode to different text than its text field (saved with "
            f"another model or edited by hand?); the ids are used.")


def load_prompt_file(path: Path, encode: Callable[[str], list[int]], model: str,
                     chat: Callable[[list[dict]], list[int]] | None = None, *,
                     decode: Callable[[Sequence[int]], str] | None = None) -> LoadedPrompt:
    """Read a .txt (using the ids of a matching sibling .json) or a saved .json prompt.

    Ids are used as saved only when the JSON names the same model; otherwise the text is
    re-tokenised with `encode` (a chat prompt's messages re-rendered with `chat`, this
    model's template, when given) and a warning says so. With `decode`, ids used as saved
    that do not decode to the saved text also get a warning (ids_text_warning). Raises
    PromptFileError.
    """
    path = Path(path)
    record, text = None, None
    if path.suffix.lower() == ".jsonl":
        return load_token_lines(path, decode)
    if path.suffix.lower() == ".json":
        record = _read_json(path)
        text = record["text"]
    else:
        text = _read_text(path)
        sibling = path.with_suffix(".json")
        if sibling.is_file():
            try:
                candidate = _read_json(sibling)
            except PromptFileError:
                candidate = None
            # The .txt may have been edited by hand since; then the text wins.
            if candidate is not None and candidate["text"] == text:
                record = candidate
    if not text.strip() and not (record and record["token_ids"]):
        raise PromptFileError(f"Input file {path} is empty.")
    warning = None
    messages = None if record is None or record.get("messages") is None else tuple(record["messages"])
    if record is not None and record["token_ids"]:
        if record.get("model") == model:
            ids = tuple(record["token_ids"])
            original, origins = _provenance(record, ids)
            warning = None if decode is None else ids_text_warning(path.name, ids, text, decode)
            return LoadedPrompt(ids, text, warning, messages, original, origins)
        warning = (
            f"{path.name} was saved with model {record.get('model')!r}; "
            f"its text was re-tokenised for {model!r}."
        )
        if messages is not None and chat is not None:
            try:
                ids = tuple(chat([dict(m) for m in messages]))
            except Exception as exc:  # noqa: BLE001 - the template's own sentence, then plain text
                warning = f"{warning[:-1]}: {exc}"
            else:
                return LoadedPrompt(ids, text, (
                    f"{path.name} was saved with model {record.get('model')!r}; its messages were "
                    f"rendered with the chat template of {model!r}."), messages)
    ids = tuple(encode(text))
    if not ids:
        raise PromptFileError(f"Input file {path} gives no tokens.")
    return LoadedPrompt(ids, text, warning)


def load_token_lines(path: Path, decode: Callable[[Sequence[int]], str] | None = None) -> LoadedPrompt:
    """A JSONL written by `trace --jsonl` or the app's `x` (explorer.core.export) as a
    prompt, token for token: x's lines hold every position; trace's hold the generated
    tokens, its first line also the prompt's ids ("prompt_ids"), which become the original
    (ctrl+r) and the rest are marked sampled. Raises PromptFileError (one sentence)."""
    lines = []
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError, ValueError):
            raise PromptFileError(f"Input file {path} line {number} is not valid JSON.") from None
    if not lines:
        raise PromptFileError(f"Input file {path} is empty.")
    if not all(isinstance(line, dict) and _is_ids([line.get("token_id")])
               and isinstance(line.get("position"), int) for line in lines):
        raise PromptFileError(f"Input file {path} is not a trace or x JSONL (each line needs "
                              "position and token_id).")
    first = lines[0]["position"]
    prompt = lines[0].get("prompt_ids", [] if first == 0 else None)
    if not _is_ids(prompt) or len(prompt) != first:
        raise PromptFileError(f"Input file {path} starts at position {first} without the "
                              f"{first} prompt ids before it (prompt_ids); open the saved .json instead.")
    if [line["position"] for line in lines] != list(range(first, first + len(lines))):
        raise PromptFileError(f"Input file {path} has positions that do not follow one another.")
    ids = tuple(prompt) + tuple(line["token_id"] for line in lines)
    text = decode(ids) if decode is not None else "".join(str(line.get("token", "")) for line in lines)
    if not prompt:  # x: every position, their provenance unknown
        return LoadedPrompt(ids, text)
    return LoadedPrompt(ids, text, original=tuple(prompt),
                        origins=("prompt",) * len(prompt) + ("sampled",) * len(lines))
