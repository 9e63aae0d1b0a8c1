"""`trace` flags that carry the habits of the tools Token Explorer replaces (issue 26):
Token Tracer's `--max-print-tokens` and per-token id check, vLLM's tracked tokens by id
(`--track-id`) and their summary file in vLLM's shape (`--tracked-summary`), and Gemma's
logprobs JSONL (`--format gemma`, written by explorer.core.gemma).

Their flag group is its own function, so the other helpers' trace flags merge beside it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from explorer.backend.types import TrackedSeries
from explorer.core.report import StepExtras
from explorer.core.trace import Trace

FORMATS = ("explorer", "gemma")


def add_habit_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("habits of other tools")
    group.add_argument("--max-print-tokens", type=int, default=0, metavar="N",
                       help="show the first N steps in the report (0 = all, the default); "
                            "the files keep every step")
    group.add_argument("--track-id", type=int, action="append", default=None, metavar="ID",
                       dest="track_id",
                       help="follow token id ID at every position (repeatable; with --track TEXT "
                            "too); adds `tracked` to each JSONL line and each step of the report")
    group.add_argument("--tracked-summary", type=Path, metavar="PATH", default=None,
                       help='write the tracked tokens in vLLM\'s shape, {"tracked_logprobs": '
                            '{"<id>": [logprob per generated step]}}, to PATH')
    group.add_argument("--format", choices=FORMATS, default="explorer", dest="format",
                       help="layout of the --jsonl file: explorer (one line per step, the "
                            "default) or gemma (Gemma's token-analysis visualisers: one line "
                            "per response)")


def check_habit_args(args: argparse.Namespace, check_writable: Callable[..., None],
                     usage: type[Exception]) -> None:
    """Everything refused before the model loads."""
    if args.max_print_tokens < 0:
        raise usage(f"--max-print-tokens must be 0 (all) or more, not {args.max_print_tokens}.")
    bad = next((t for t in args.track_id or () if t < 0), None)
    if bad is not None:
        raise usage(f"--track-id must be a token id (0 or more), not {bad}.")
    if args.tracked_summary is not None:
        if not (args.track or args.track_id):
            raise usage("--tracked-summary writes the tracked tokens; give --track-id ID or --track TEXT too.")
        check_writable(args.tracked_summary, reading=args.input)
        if args.jsonl is not None and args.jsonl.resolve() == args.tracked_summary.resolve():
            raise usage("--tracked-summary and --jsonl name the same file; give two paths.")
    if args.format == "gemma" and args.jsonl is None:
        raise usage("--format gemma is the layout of the --jsonl file; give --jsonl PATH too.")


def track_ids_checked(ids: Sequence[int] | None, vocab_size: int, usage: type[Exception]) -> list[int]:
    """--track-id values, in order without repeats, each inside the vocabulary."""
    out: list[int] = []
    for t in ids or ():
        if t >= vocab_size:
            raise usage(f"--track-id {t} is outside the vocabulary ({vocab_size} tokens: 0 to {vocab_size - 1}).")
        if t not in out:
            out.append(int(t))
    return out


def step_logprobs(result: Trace, series: TrackedSeries) -> dict[int, list[float]]:
    """Per tracked id, its log-prob at each generated step: in the distribution the step's
    token was chosen from (the row after the position before it)."""
    rows = range(result.prompt_len - 1, len(result.records) - 1)
    return {int(t): [float(series.logprobs[i, j]) for i in rows] for j, t in enumerate(series.token_ids)}


def tracked_summary(result: Trace, series: TrackedSeries) -> dict:
    """vLLM's shape: {"tracked_logprobs": {"<id>": [logprob per generated step]}}."""
    return {"tracked_logprobs": {str(t): lps for t, lps in step_logprobs(result, series).items()}}


def write_tracked_summary(path: Path, result: Trace, series: TrackedSeries,
                          write_atomic: Callable[[Path, str], None]) -> None:
    write_atomic(path, json.dumps(tracked_summary(result, series), allow_nan=False) + "\n")


def step_extras(result: Trace, series: TrackedSeries | None, alone: Callable[[int], Sequence[int]],
                token_text: Callable[[int], str]) -> list[StepExtras]:
    """Per generated step: the chosen token tokenised alone (Token Tracer's per-token id
    check) and the tracked tokens' log-probs at the distribution it was chosen from."""
    per_id = step_logprobs(result, series) if series is not None else {}
    out = []
    for n, token in enumerate(result.completion_ids):
        tracked = tuple((t, token_text(t), lps[n]) for t, lps in per_id.items())
        out.append(StepExtras(tuple(alone(token)), tracked))
    return out


def alone_ids(encode_plain: Callable[[str], list[int]], decode: Callable[[Sequence[int]], str]
              ) -> Callable[[int], tuple[int, ...]]:
    """token id -> the ids its own text tokenises to (no special tokens added), each token
    asked once."""
    memo: dict[int, tuple[int, ...]] = {}

    def alone(token_id: int) -> tuple[int, ...]:
        if token_id not in memo:
            memo[token_id] = tuple(int(t) for t in encode_plain(decode([token_id])))
        return memo[token_id]

    return alone
