"""`trace --choice TEXT (repeatable) | --regex RE | --json-schema FILE | --grammar FILE`:
the generation follows a constraint (explorer.sampling.constraint, the app's `c`), and
each JSONL line's `top` entries gain `valid` (false: the constraint forbade that token at
that step, so its logprob_final is null).

Files are read and a schema is parsed before the model loads, so a missing, binary or
non-JSON file is one sentence and no model work.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from explorer.backend import Feature
from explorer.sampling.constraint import ConstraintSpec, check_syntax

def add_constraint_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--choice", action="append", metavar="TEXT", default=None,
                       help="the generation is exactly one of these texts (repeatable)")
    group.add_argument("--regex", metavar="RE", help="the generation fully matches RE")
    group.add_argument("--json-schema", type=Path, metavar="FILE",
                       help="the generation is JSON that validates against the schema in FILE")
    group.add_argument("--grammar", type=Path, metavar="FILE",
                       help="the generation follows the Lark grammar in FILE")


def _read_text(path: Path, flag: str) -> str:
    """The file's text; ValueError with one sentence when it cannot be a text file."""
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a folder, not a file.")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{flag} {path} does not exist.") from None
    except OSError as exc:
        raise ValueError(f"{flag} {path} cannot be read: {exc.strerror or exc}.") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise ValueError(f"{flag} {path} is not a UTF-8 text file.")
    if not text.strip():
        raise ValueError(f"{flag} {path} is empty.")
    return text


def constraint_spec(args: argparse.Namespace) -> ConstraintSpec | None:
    """The constraint the flags ask for (None: none), its syntax checked. Raises ValueError
    (one sentence)."""
    spec = _spec(args)
    if spec is not None:
        check_syntax(spec)  # ConstraintError is a ValueError: before the model loads
    return spec


def _spec(args: argparse.Namespace) -> ConstraintSpec | None:
    if args.choice is not None:
        if any(c == "" for c in args.choice):
            raise ValueError("--choice needs a non-empty text.")
        return ConstraintSpec("choice", tuple(args.choice))
    if args.regex is not None:
        if not args.regex:
            raise ValueError("--regex needs a pattern.")
        return ConstraintSpec("regex", args.regex)
    if args.grammar is not None:
        return ConstraintSpec("grammar", _read_text(args.grammar, "--grammar"))
    if args.json_schema is not None:
        text = _read_text(args.json_schema, "--json-schema")
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--json-schema {args.json_schema} is not valid JSON: {exc.msg} at line "
                             f"{exc.lineno}.") from None
        if not isinstance(schema, dict):
            raise ValueError(f"--json-schema {args.json_schema} must hold a JSON object.")
        return ConstraintSpec("json_schema", text)
    return None


def constrain(backend, sampler, spec: ConstraintSpec) -> frozenset[int]:
    """Compile `spec` for the backend's tokenizer and put it on the sampler. Returns the ids
    the generation stops at: the model's end-of-sequence ids and the constraint's (the one
    it allows once the text is a whole match). Raises ConstraintError (one sentence)."""
    constraint = backend.constraint(spec)
    sampler.set_constraint(constraint)
    return frozenset(backend.eos_ids) | constraint.eos_ids


REPLAY_KEY = "trace-replay"


def server_replay(backend, ids: Sequence[int], spec: ConstraintSpec, max_new_tokens: int,
                  settings=None):
    """On a server with structured outputs (vLLM): (a Choose that replays the completion the
    server generated under the constraint, greedily or with the sampler `settings`, its
    length, the ids to stop at: the end-of-sequence token the server ended with, if it
    did). Raises ValueError (one sentence) on a server without them (llama.cpp)."""
    if why := backend.capabilities.missing(Feature.SERVER_CONSTRAINTS):
        raise ValueError(why)
    done = backend.constrained_completion(ids, spec, max_new_tokens, settings)
    tokens, start = done.tokens, len(ids)
    # Every step's numbers in one request, which the replayed steps then read; the
    # backend keeps them under REPLAY_KEY until it forgets that key or closes.
    backend.load_whole(REPLAY_KEY, tuple(ids) + tokens, start - 1)

    def replay(seq, last) -> int:
        return tokens[len(seq) - start]

    return replay, len(tokens), frozenset(tokens[-1:]) if done.ends else frozenset()


def server_valids(backend, spec: ConstraintSpec, completion: Sequence[int],
                  lines: list[dict]) -> list[dict[int, bool]] | None:
    """For a constraint a server applied (vLLM's structured outputs): per step, which of
    that line's `top` tokens the constraint allowed, from the constraint compiled here for
    the server model's tokenizer and walked over the server's own completion ids. None
    (valid stays null) when that tokenizer is not on this machine (offline: a local
    folder or the Hugging Face cache), its ids disagree with the server's, or the walk
    fails."""
    from explorer.sampling.constraint import Constraint, ConstraintError
    from explorer.sampling.local_tokenizer import local_tokenizer

    tokenizer = local_tokenizer(backend.info.name, backend.encode)
    if tokenizer is None:
        return None
    vocab = backend.info.vocab_size
    try:
        constraint = Constraint.for_tokenizer(spec, tokenizer, vocab)
        out = []
        for n, line in enumerate(lines):
            allowed = constraint.allowed(completion[:n])
            out.append({c["token_id"]: 0 <= c["token_id"] < vocab and bool(allowed[c["token_id"]])
                        for c in line["top"]})
        return out
    except (ConstraintError, IndexError):
        return None


def add_valid_fields(lines: list[dict], valids: Sequence[Mapping[int, bool]] | None) -> list[dict]:
    """Add `valid` to each `top` entry of trace JSONL lines, in place (line n = step n);
    valids None: not known (a server applied the constraint), null in every entry."""
    for n, line in enumerate(lines):
        for c in line["top"]:
            c["valid"] = None if valids is None else bool(valids[n].get(c["token_id"], False))
    return lines
