"""A prompt file checked before any model loads: its size first (a glance at the file
system, in files._read_text), then that it is text or a saved prompt and not empty.
Everything here is cheap; the tokenising that needs the model comes later
(explorer/session/files.py). MAX_PROMPT_BYTES is the size limit.
"""

from __future__ import annotations

from pathlib import Path

from explorer.session.files import (MAX_PROMPT_BYTES, PromptFileError, _read_json, _read_text,
                                    load_token_lines)
from explorer.session.gemma_files import read_gemma

__all__ = ["MAX_PROMPT_BYTES", "check_prompt_file", "check_run_files"]


def check_prompt_file(path: Path | None) -> None:
    """Refuse a prompt file that cannot be used, in one sentence. Raises PromptFileError."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir() and not path.is_file():
        raise PromptFileError(f"Input file {path} is not a regular file.")  # a FIFO would block
    if read_gemma(path) is not None:  # Gemma's logprobs JSONL or token tree
        return
    if path.suffix.lower() == ".jsonl":  # a trace or x JSONL: its lines are read whole here
        load_token_lines(path)
    elif path.suffix.lower() == ".json":
        record = _read_json(path)
        if not record["text"].strip() and not record["token_ids"]:
            raise PromptFileError(f"Input file {path} is empty.")
    elif not (text := _read_text(path)).strip() and not _saved_ids(path.with_suffix(".json"), text):
        raise PromptFileError(f"Input file {path} is empty.")


def _saved_ids(sibling: Path, text: str) -> bool:
    """A whitespace-only .txt is still a prompt when its saved .json holds its ids."""
    try:
        record = _read_json(sibling) if sibling.is_file() else None
    except PromptFileError:
        return False
    return bool(record and record["text"] == text and record["token_ids"])


def check_run_files(input_path: Path | None, outputs: tuple[Path | None, ...], *,
                    create_folder: bool = False) -> None:
    """A headless command's prompt file and output paths, before the model loads: one
    sentence for the first problem (an output over the input included). Raises PromptFileError."""
    from explorer.output_paths import output_problem

    check_prompt_file(input_path)
    for out in outputs:
        if out is not None and (why := output_problem(out, (input_path,), create_folder=create_folder)):
            raise PromptFileError(why)
