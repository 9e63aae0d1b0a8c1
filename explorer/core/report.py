"""The text report of a trace: settings and model, the ids, one block per generated token,
and the id check. Plain text (no colour codes), so it reads the same in a pipe or a file."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from explorer.backend.types import ModelInfo, TokenRecord
from explorer.core.id_check import IdCheck
from explorer.core.trace import Trace

INDENT = "    "


def _quoted(text: str) -> str:
    # JSON quoting shows newlines and tabs as \n and \t while keeping other text readable.
    return json.dumps(text, ensure_ascii=False)


def _prob(logprob: float | None) -> str:
    return "n/a" if logprob is None else f"{math.exp(logprob):.4f}"


def _ids(ids: Sequence[int]) -> str:
    return "[" + ", ".join(str(i) for i in ids) + "]"


def _tokens(n: int) -> str:
    return f"{n} token" if n == 1 else f"{n} tokens"


def _pct(logprob: float | None) -> str:
    if logprob is None:
        return "n/a"
    p = 100 * math.exp(logprob)
    return "<0.01%" if 0 < p < 0.005 else f"{p:.2f}%"


def _lp(logprob: float | None) -> str:
    return "n/a" if logprob is None else f"{logprob:.4f}"


@dataclass(frozen=True)
class StepExtras:
    """What a step's block shows beyond its records: the chosen token's per-token id check
    (its text tokenised alone, Token Tracer's `ids=[…] ✓`) and the tracked tokens'
    log-probs at the distribution it was chosen from."""

    alone: tuple[int, ...] | None = None  # encode(decode([token_id])); None: not checked
    tracked: tuple[tuple[int, str, float], ...] = ()  # (id, text, logprob)


def token_check(token_id: int, alone: Sequence[int] | None) -> str:
    """`ids=[1065] ✓` when the token's text tokenises back to it alone, else
    `ids=[…] ✗ (actual: 1065)`."""
    if alone is None:
        return ""
    ok = list(alone) == [token_id]
    return f"ids={_ids(alone)} " + ("✓" if ok else f"✗ (actual: {token_id})")


def _step_block(n: int, record: TokenRecord, before: TokenRecord, top_k: int,
                final: Mapping[int, float | None] | None = None,
                extras: StepExtras = StepExtras()) -> list[str]:
    """final: logprob_final of the chosen token and the candidates (None: excluded by the
    sampler), or None when no sampler ran."""
    at_least = "≥" if record.entropy_bound else ""  # a server's top-K gives a lower bound
    entropy = "n/a" if record.entropy is None else f"{at_least}{record.entropy:.3f} nats"
    check = token_check(record.token_id, extras.alone)
    head = (f"step {n}  {record.text}  p {_prob(record.logprob)}  rank {record.rank}  "
            f"id {record.token_id}  {check + '  ' if check else ''}logprob {_lp(record.logprob)}  "
            f"{_pct(record.logprob)}  entropy {entropy}")
    if final is not None:
        head += f"  p_final {_prob(final.get(record.token_id))}"
    top = before.top[:top_k]
    width = max((len(c.text) for c in top), default=0)
    lines = [head]
    for k, c in enumerate(top, 1):
        mark = "  <- chosen" if c.token_id == record.token_id else ""
        if final is not None:
            lp = final.get(c.token_id)
            mark = (f"  final {_prob(lp)}" if lp is not None else "  (excluded)") + mark
        lines.append(f"{INDENT}{k:>2}. {c.text:<{width}}  {c.prob:.4f}  logprob {_lp(c.logprob)}  "
                     f"{_pct(c.logprob)}  id {c.token_id}{mark}")
    for tid, text, lp in extras.tracked:
        lines.append(f"{INDENT}tracked {text}  id {tid}  logprob {_lp(lp)}  {_pct(lp)}")
    return lines


def _id_check_lines(check: IdCheck, token_text: Callable[[int], str]) -> list[str]:
    if check.ok:
        return [f"id check: ok, re-tokenising the text gives the same {len(check.ids)} ids."]
    n = len(check.mismatches)
    lines = [f"id check: {n} mismatch{'' if n == 1 else 'es'}: re-tokenising the text does not "
             "give the same ids."]
    for m in check.mismatches:
        where = "prompt" if m.end <= check.prompt_len else (
            "completion" if m.start >= check.prompt_len else "prompt/completion boundary")
        span = f"position {m.start}" if m.end - m.start <= 1 else f"positions {m.start}-{m.end - 1}"
        if m.start == m.end:
            span = f"before position {m.start}"
        generated = " ".join(f"{t}:{token_text(t)}" for t in m.generated) or "(nothing)"
        again = " ".join(f"{t}:{token_text(t)}" for t in m.retokenised) or "(nothing)"
        lines.append(f"{INDENT}{span} ({where}): generated {generated}  ->  re-tokenised {again}")
    return lines


def format_report(info: ModelInfo, settings: Mapping[str, object], result: Trace,
                  check: IdCheck, decode: Callable[[Sequence[int]], str],
                  token_text: Callable[[int], str], top_k: int,
                  finals: Sequence[Mapping[int, float | None]] | None = None, forced: int = 0,
                  extras: Sequence[StepExtras] | None = None, max_print: int = 0) -> str:
    """The whole report; `settings` are shown as `name value` pairs in the given order.
    `forced`: how many of the prompt's last ids --prefix forced (shown on their own line).
    `extras`: per step, its id check and tracked tokens. `max_print`: show the first N
    steps' blocks only (0 = all; Token Tracer's --max-print-tokens)."""
    n_new = len(result.completion_ids)
    stopped = {"eos": "an end-of-sequence token", "interrupted": "Ctrl-C"}.get(result.stop, "--max-new-tokens")
    lines = [
        f"model       {info.name} ({info.architecture}, {info.device}, {info.dtype}, "
        f"vocabulary {info.vocab_size:,})",
        "settings    " + ", ".join(f"{k} {v}" for k, v in settings.items()),
        f"prompt      {_quoted(decode(result.prompt_ids))}",
        f"prompt ids  {_ids(result.prompt_ids)} ({_tokens(len(result.prompt_ids))})",
        *([f"forced ids  {_ids(result.prompt_ids[-forced:])} ({_tokens(forced)} at the end of the "
           f"prompt, origin forced: --prefix {_quoted(decode(result.prompt_ids[-forced:]))})"]
          if forced else []),
        f"completion  {_quoted(decode(result.completion_ids))}",
        f"completion ids  {_ids(result.completion_ids)} ({_tokens(n_new)}, stopped by {stopped})",
        "",
    ]
    steps = result.steps
    shown = steps if max_print <= 0 else steps[:max_print]
    for n, (record, before) in enumerate(shown, 1):
        final = None if finals is None else finals[n - 1]
        extra = StepExtras() if extras is None else extras[n - 1]
        lines += _step_block(n, record, before, top_k, final, extra) + [""]
    if len(shown) < len(steps):
        hidden = len(steps) - len(shown)
        lines += [f"({hidden} more step{'' if hidden == 1 else 's'} not shown: --max-print-tokens {max_print})", ""]
    lines += _id_check_lines(check, token_text)
    return "\n".join(lines) + "\n"
