"""`uv run main.py compare ...`: two models on the same tokens, position by position.

Model A (--model, --dtype, --server...) and model B (--compare MODEL, --compare-dtype D,
--compare-server URL) read the same prompt ids; with --max-new-tokens N, A first
generates N tokens greedily and B scores the same ones. The report names the most
divergent positions; --jsonl writes one line per position and a summary line, atomically.

Bad input is one sentence on stderr and exit code 2, before any model loads where it can
be; two models whose tokenizers differ are refused in one sentence before the comparison.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from explorer.backend import BackendError, open_backend
from explorer.cli import UsageError
from explorer.compare.models import ModelComparison, compare_models, vocabulary_mismatch
from explorer.config import ConfigError, Settings
from explorer.context_limit import context_error
from explorer.core.export import ExportError, check_writable, write_jsonl
from explorer.core.progress import TraceProgress
from explorer.core.trace import check_length, trace
from explorer.flags import (add_compare_flags, add_model_flags, add_prompt_flags, add_report_flags,
                            compare_asked, compare_settings, settings_from_args)
from explorer.inputs import check_prompt_file
from explorer.output_paths import print_report
from explorer.session.files import PromptFileError
from explorer.session.start import open_prompt

PROG = "token-explorer compare"
SUMMARY = "compare two models on the same tokens, position by position (compare --help)"
DESCRIPTION = ("Compare model A (--model) with model B (--compare, --compare-dtype or "
               "--compare-server) on the same token ids: per position KL(p_A || p_B), each "
               "side's log-prob of the actual token and top-1. Exact over the full vocabulary "
               "for two local models; a lower bound (>=) with a server on either side.")
SHOWN = 10  # most divergent positions in the report
SERVER_TOP_K = 64  # a server's top-K per position for the bound (capped by the server)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_prompt_flags(parser, prompt_help="this or --prompt is needed")
    add_model_flags(parser)
    add_compare_flags(parser)
    parser.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                        help="model A first generates N tokens greedily; B scores the same ones")
    parser.add_argument("--jsonl", type=Path, metavar="PATH",
                        help="write one JSON object per position, then a summary line, to PATH")
    add_report_flags(parser)


def _check_args(args: argparse.Namespace) -> None:
    if args.prompt is None and args.input is None:
        raise UsageError("Give a prompt with --prompt TEXT or -i FILE.")
    if not compare_asked(args):
        raise UsageError("Name model B with --compare MODEL, --compare-dtype DTYPE or --compare-server URL.")
    check_prompt_file(args.input)
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be at least 1, not {args.max_new_tokens}.")
    for path in (args.jsonl, args.html):
        if path is not None:
            check_writable(path, reading=args.input)


def _describe(backend) -> str:
    info = backend.info
    return f"{info.name} ({info.dtype}, {backend.capabilities.kind})"


def _fmt(value: float | None, width: int = 8) -> str:
    return f"{'—':>{width}}" if value is None else f"{value:>{width}.4f}"


def format_report(cmp: ModelComparison, a, b, prompt_len: int, token_text) -> str:
    s = cmp.summary()
    ge = "≥ " if cmp.kl_bound else ""
    lines = [f"A: {_describe(a)}", f"B: {_describe(b)}",
             f"{len(cmp.ids)} tokens ({prompt_len} prompt), KL(A‖B) in nats, "
             + ("a lower bound: B or A is a server (top-K only)" if cmp.kl_bound else "exact over the full vocabulary")]
    if s["positions"] == 0:
        return "\n".join(lines + ["No position has a prediction (one token)."]) + "\n"
    worst = cmp.positions[s["max_kl_position"]]
    lines.append(f"mean KL {ge}{s['mean_kl']:.3g} · max KL {ge}{s['max_kl']:.3g} at position "
                 f"{worst.position} ({token_text(worst.token_id)}) · top-1 agreement "
                 f"{s['top1_agree']}/{s['positions']} ({100 * s['top1_agreement']:.1f}%)")
    lines.append(f"most divergent positions:\n{'pos':>5}  {'token':<14}{'KL(A‖B)':>10}{'ln pA':>9}"
                 f"{'ln pB':>9}  {'top-1 A':<12}{'top-1 B':<12}")
    for p in cmp.ranked()[:SHOWN]:
        kl = f"{ge}{p.kl_ab:.3g}"
        lines.append(f"{p.position:>5}  {token_text(p.token_id)[:13]:<14}{kl:>11}{_fmt(p.logprob_a, 9)}"
                     f"{_fmt(p.logprob_b, 9)}  {token_text(p.top1_a)[:11]:<12}{token_text(p.top1_b)[:11]:<12}")
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def jsonl_lines(cmp: ModelComparison, prompt_len: int) -> list[dict]:
    """One line per position (the first has no prediction: nulls), then the summary."""
    lines = [{"position": p.position, "token_id": p.token_id, "token": p.token,
              "logprob_a": _num(p.logprob_a), "logprob_b": _num(p.logprob_b),
              "kl_ab": _num(p.kl_ab), "kl_bound": cmp.kl_bound,
              "top1_a": p.top1_a, "top1_b": p.top1_b, "generated": p.position >= prompt_len}
             for p in cmp.positions]
    summary = cmp.summary()
    for name in ("mean_kl", "max_kl"):
        summary[name] = _num(summary[name])
    return lines + [summary]


def run(args: argparse.Namespace, settings: Settings, settings_b: Settings, progress: TraceProgress) -> str:
    with progress.loading(settings.model.name) as say:
        a = open_backend(settings, progress=say, influence=False, notice=progress.warn)
    try:
        with progress.loading(settings_b.model.name) as say:
            b = open_backend(settings_b, progress=say, influence=False, notice=progress.warn)
        try:
            if why := vocabulary_mismatch(a, b):
                raise UsageError(why)
            start = open_prompt(a, settings.prompts, text=args.prompt, path=args.input, strict=True)
            for warning in start.warnings:
                progress.warn(warning)
            ids = start.ids
            if args.max_new_tokens is not None:
                check_length(a, len(ids), args.max_new_tokens)
                with progress.generating(len(ids), args.max_new_tokens) as (on_prefill, on_step):
                    ids = trace(a, ids, args.max_new_tokens, key="compare",
                                prefill_progress=on_prefill, step_progress=on_step).ids
            for side in (a, b):
                if why := context_error(len(ids), side.info.max_context, side.info.name):
                    raise UsageError(why)
            with progress.generating(len(ids), 1) as (on_rows, _):
                cmp = compare_models(a, b, ids, progress=on_rows)
            if args.jsonl is not None:
                write_jsonl(args.jsonl, jsonl_lines(cmp, len(start.ids)))
            if args.html is not None:
                _write_html(args, a, cmp)
            return format_report(cmp, a, b, len(start.ids), a.token_text)
        finally:
            b.close()
    finally:
        a.close()


def _write_html(args: argparse.Namespace, a, cmp: ModelComparison) -> None:
    """Model A's prompt as one HTML page (explorer.report), with the KL along it and the
    summary. A's records cost one more prefill of A (the comparison keeps no records)."""
    from explorer.report.build import write_report

    summary = cmp.summary()
    title = "KL(A‖B) ≥ (lower bound)" if cmp.kl_bound else "KL(A‖B)"
    facts = [("model A", f"{cmp.name_a} ({cmp.dtype_a})"), ("model B", f"{cmp.name_b} ({cmp.dtype_b})")]
    facts += [(k.replace("_", " "), str(v)) for k, v in summary.items()
              if k not in ("summary", "model_a", "model_b", "dtype_a", "dtype_b")]
    comparison = {"title": title, "kl": [_num(p.kl_ab) for p in cmp.positions], "facts": facts}
    try:
        records = a.sync("compare-html", cmp.ids)
        write_report(args.html, a, records, title=f"compare · {cmp.name_a} vs {cmp.name_b}",
                     layer=args.html_layer, comparison=comparison)
    except OSError as exc:
        raise ExportError(f"Could not write {args.html}: {exc.strerror or type(exc).__name__}.") from exc
    finally:
        a.forget("compare-html")


def run_args(args: argparse.Namespace) -> int:
    progress = TraceProgress.for_terminal()

    def work() -> str:
        _check_args(args)
        settings = settings_from_args(args)
        settings_b = replace_top_k(compare_settings(settings, args))
        return run(args, settings, settings_b, progress)

    code = print_report(PROG, work, (UsageError, ConfigError, BackendError, PromptFileError,
                                     ExportError))
    return 0 if code is None else code


def replace_top_k(settings: Settings) -> Settings:
    """A server side lists its top SERVER_TOP_K per position (the more, the tighter the bound)."""
    from dataclasses import replace

    if not settings.server.url:
        return settings
    return replace(settings, display=replace(settings.display, tokens_to_show=SERVER_TOP_K))
