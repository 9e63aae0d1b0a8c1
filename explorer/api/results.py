"""What the Python API's verbs return: plain data (the JSONL lines the commands write),
`to_pandas()`, the same files, and coloured tokens in Jupyter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from explorer.api.html import tokens_html
from explorer.core.export import check_writable, jsonl_text, write_jsonl
from explorer.errors import MissingPackage


def _data_frame(lines: list[dict]):
    try:
        import pandas
    except ImportError:
        raise MissingPackage("to_pandas() needs pandas, which is not installed here "
                             "(pip install pandas, or uv add pandas).") from None
    return pandas.DataFrame.from_records(lines)


class _Lines:
    """Shared by a trace and a prompt's positions: both are JSONL lines."""

    lines: list[dict]

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self):
        return iter(self.lines)

    def __getitem__(self, i):
        return self.lines[i]

    def to_pandas(self):
        """One row per line, its JSON fields as columns (`top` a list of dicts); what
        `pandas.read_json(path, lines=True)` reads from the saved file. Needs pandas."""
        return _data_frame(self.lines)

    def jsonl(self) -> str:
        """The file's text."""
        return jsonl_text(self.lines)

    def save_jsonl(self, path: str | Path) -> Path:
        """Write the lines, atomically (never half a file). Raises ExportError."""
        path = Path(path)
        check_writable(path)
        write_jsonl(path, self.lines)
        return path


@dataclass(frozen=True, eq=False)
class TraceResult(_Lines):
    """A generation, as `main.py trace` reports it. `lines`: one per generated token, the
    lines `trace --jsonl` writes (step, position, token_id, token, logprob, logprob_final,
    rank, entropy, entropy_bound, top, and stop, tracked, valid, attribution where asked);
    `report`: the text `trace` prints."""

    lines: list[dict]
    report: str
    prompt: str  # the prompt's text (after --chat / --prefix, as the ids read)
    prompt_ids: tuple[int, ...]
    prompt_tokens: tuple[str, ...]  # each prompt id's own text
    completion: str
    completion_ids: tuple[int, ...]
    stop: str  # "eos", "length" or "interrupted"

    @property
    def ids(self) -> tuple[int, ...]:
        return self.prompt_ids + self.completion_ids

    def __str__(self) -> str:
        return self.report

    def __repr__(self) -> str:
        return (f"TraceResult({len(self.lines)} steps, stop {self.stop!r}, "
                f"completion {self.completion!r})")

    def _repr_html_(self) -> str:
        return tokens_html(self.lines, before=zip(self.prompt_ids, self.prompt_tokens),
                           caption=f"{len(self.lines)} new tokens after a {len(self.prompt_ids)}-token "
                                   f"prompt (grey), stopped: {self.stop}")


@dataclass(frozen=True, eq=False)
class Positions(_Lines):
    """Every position of a prompt: the numbers a prompt's load keeps, one line per token
    (step = position, token_id, token, logprob, rank, entropy, entropy_bound, top), the
    lines the app's `x` saves. Position 0 has no prediction: null numbers, empty top."""

    lines: list[dict]
    text: str
    ids: tuple[int, ...]

    def __repr__(self) -> str:
        return f"Positions({len(self.lines)} tokens, {self.text!r})"

    def _repr_html_(self) -> str:
        return tokens_html(self.lines, caption=f"{len(self.lines)} prompt tokens")
