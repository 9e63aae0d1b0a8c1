"""A prompt file checked before any model loads: its size first (a glance at the file
system), then that it is text or a saved prompt and not empty. Everything here is cheap;
the tokenising that needs the model comes later, in explorer/session/files.py.
"""

from __future__ import annotations

from pathlib import Path

from explorer.session.files import PromptFileError, _read_json, _read_text

# No model this app runs has a context anywhere near this (1 MiB of text is about 250,000
# tokens); a saved .json holds its ids too, so it may be a few times its text.
MAX_PROMPT_BYTES = 4 * 1024 * 1024


def check_prompt_file(path: Path | None) -> None:
    """Refuse a prompt file that cannot be used, in one sentence. Raises PromptFileError."""
    if path is None:
        return
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise PromptFileError(f"Input file {path} does not exist.") from None
    except OSError as exc:
        raise PromptFileError(f"Input file {path} cannot be read: {exc.strerror}.") from None
    if path.is_dir():
        raise PromptFileError(f"Input file {path} is a folder, not a file.")
    if not path.is_file():
        raise PromptFileError(f"Input file {path} is not a regular file.")
    if size > MAX_PROMPT_BYTES:
        raise PromptFileError(f"Input file {path} is {size / 2**20:.1f} MiB; a prompt file may be "
                              f"at most {MAX_PROMPT_BYTES // 2**20} MiB.")
    if path.suffix.lower() == ".json":
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
