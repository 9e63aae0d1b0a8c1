"""Reading Gemma's token-analysis files back as prompts (`-i FILE` in the app, `trace` and
`tree`, through explorer.session.start.open_prompt): a logprobs JSONL (its first line's
`prompt`, then its response's tokens) and a token-tree JSON (its `metadata.prompt`; the
tree itself is for the app's tree view). The layouts are in explorer/core/gemma.py and
explorer/tree/gemma.py.

The response's tokens are text, not ids: each is tokenised alone (no special tokens), so a
token of the model that wrote the file comes back as the same token here when the models
share a tokenizer; where one does not give exactly one token, a warning says how many.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from explorer.session.files import PromptFileError, _read_text


@dataclass(frozen=True)
class GemmaFile:
    kind: str  # "logprobs" or "tree"
    prompt: str
    tokens: tuple[str, ...]  # the response's tokens (a logprobs file), in order
    tree: dict | None = None  # the token-tree JSON as read (a tree file)


def read_gemma(path: Path | None) -> GemmaFile | None:
    """The Gemma file at `path`, or None when it is not one (any other prompt file).
    Raises PromptFileError for a Gemma file whose fields are wrong."""
    if path is None or Path(path).suffix.lower() not in (".json", ".jsonl"):
        return None
    path = Path(path)
    text = _read_text(path)
    first = text.lstrip().split("\n", 1)[0] if path.suffix.lower() == ".jsonl" else text
    try:
        record = json.loads(first)
    except (json.JSONDecodeError, RecursionError, ValueError):
        return None  # not JSON (or too deep to be a saved prompt): the caller says why
    if not isinstance(record, dict):
        return None
    if {"prompt", "response", "data"} <= record.keys():
        data = record["data"]
        if not isinstance(record["prompt"], str) or not isinstance(data, list) \
                or not all(isinstance(d, dict) and isinstance(d.get("token"), str) for d in data):
            raise PromptFileError(f"Input file {path} is not a Gemma logprobs file (needs a prompt "
                                  "text and data entries with a token text).")
        return GemmaFile("logprobs", record["prompt"], tuple(d["token"] for d in data))
    if {"metadata", "tree"} <= record.keys():
        meta = record["metadata"]
        if not isinstance(meta, dict) or not isinstance(meta.get("prompt"), str) \
                or not isinstance(record["tree"], dict):
            raise PromptFileError(f"Input file {path} is not a Gemma token tree (needs metadata.prompt and a tree).")
        return GemmaFile("tree", meta["prompt"], (), record)
    return None


def gemma_ids(gemma: GemmaFile, encode: Callable[[str], list[int]],
              encode_plain: Callable[[str], list[int]]) -> tuple[tuple[int, ...], str | None]:
    """(ids, warning or None): the prompt encoded as a prompt (special tokens as the model
    adds them), then each response token's text alone."""
    ids = list(encode(gemma.prompt))
    split = 0
    for token in gemma.tokens:
        got = encode_plain(token)
        split += len(got) != 1
        ids += got
    warning = None
    if split:
        warning = (f"{split} of the file's {len(gemma.tokens)} response tokens are not one token "
                   "of this model; their text was tokenised as it came.")
    return tuple(ids), warning
