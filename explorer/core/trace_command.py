"""`uv run main.py trace ...`: a per-token report of a generation, and optionally JSONL.

Bad input (an empty prompt, a missing file, an unknown model, a bad --max-new-tokens, an
unwritable --jsonl) is one sentence on stderr and exit code 2, checked before any model
work where it can be; nothing half-written is left (the JSONL is written atomically).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from explorer.backend import Backend, BackendError, open_backend
from explorer.cli import UsageError
from explorer.config import ConfigError, Settings
from explorer.core.export import ExportError, check_writable, record_lines, write_atomic, write_jsonl
from explorer.core.gemma import gemma_line
from explorer.core.id_check import check_ids
from explorer.core.progress import TraceProgress
from explorer.core.report import format_report
from explorer.core.trace import Trace, check_length, greedy, partial_trace, trace
from explorer.core.trace_attribution import (
    add_attribution_fields,
    add_trace_attribution_flags,
    describe_attribution,
    refusal,
    step_attributions,
)
from explorer.core.trace_habits import (
    add_habit_flags,
    alone_ids,
    check_habit_args,
    step_extras,
    track_ids_checked,
    write_tracked_summary,
)
from explorer.core.trace_output import kept, write_html
from explorer.core.trace_constraint import (
    add_constraint_flags,
    add_valid_fields,
    constrain,
    constraint_spec,
    server_replay,
    server_valids,
)
from explorer.core.trace_sampling import (
    TraceChoice,
    add_sampling_fields,
    add_track_flag,
    describe_decoding,
    sampling_asked,
    trace_sampler,
    tracked_ids,
)
from explorer.flags import (add_model_flags, add_prompt_flags, add_report_flags,
                            add_sampling_flags, settings_from_args)
from explorer.sampling.constraint import ConstraintError
from explorer.inputs import check_prompt_file
from explorer.interrupt import soft_interrupt
from explorer.output_paths import print_report
from explorer.session.files import PromptFileError
from explorer.session.start import StartPrompt, open_prompt

PROG = "token-explorer trace"
SUMMARY = "generate after a prompt and report every token (trace --help)"
DESCRIPTION = ("Generate greedily (or with the sampler's flags) after a prompt and report every "
               "token: its probability, rank and id, and the top candidates it was chosen from.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """trace's flags: the shared prompt, model and sampling flags, and its own."""
    add_prompt_flags(parser, prompt_help="this or --prompt is needed")
    parser.add_argument("--max-new-tokens", type=int, default=32, metavar="N",
                        help="stop after N new tokens (default 32), or earlier at end-of-sequence")
    parser.add_argument("--top-logprobs", type=int, default=5, metavar="K",
                        help="candidates shown per step and written to the JSONL (default 5)")
    parser.add_argument("--jsonl", type=Path, metavar="PATH",
                        help="also write one JSON object per generated token to PATH")
    add_model_flags(parser)
    add_sampling_flags(parser)
    add_track_flag(parser)
    add_constraint_flags(parser)
    add_trace_attribution_flags(parser)
    add_report_flags(parser)
    add_habit_flags(parser)


def check_args(args: argparse.Namespace, *, lines_kept: bool = False) -> None:
    """Everything that can be refused before the model loads. lines_kept: the caller keeps
    the JSONL lines without a file (the Python API), so --attribution needs no --jsonl."""
    if args.prompt is None and args.input is None:  # (cli.main checked the text and the file)
        raise UsageError("Give a prompt with --prompt TEXT or -i FILE.")
    check_prompt_file(args.input)  # size, text, JSON: before the model loads
    if args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be at least 1, not {args.max_new_tokens}.")
    if args.top_logprobs < 1:
        raise UsageError(f"--top-logprobs must be at least 1, not {args.top_logprobs}.")
    if args.jsonl is not None:
        check_writable(args.jsonl, reading=args.input)
    elif args.attribution and not lines_kept:
        raise UsageError("--attribution adds to the JSONL lines; give --jsonl PATH too.")
    if args.html is not None:
        check_writable(args.html, reading=args.input)
    check_habit_args(args, check_writable, UsageError)
    try:
        args.constraint = constraint_spec(args)  # files read and parsed before any model work
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _refuse_sampling_flags(args: argparse.Namespace, settings: Settings, server_sampling: bool) -> None:
    """On a backend without the logits-row sampler, say so instead of ignoring a flag. A
    server samples with its own sampler (vLLM also under a constraint)."""
    asked = sampling_asked(settings.sampling)
    if asked and not server_sampling:
        raise UsageError("Sampling flags need a local model or a server that samples; "
                         "this backend decodes greedily.")


@dataclass(frozen=True)
class TraceRun:
    """What one trace made: the generation, the JSONL lines (written to --jsonl when asked)
    and the text report."""

    result: Trace
    lines: list[dict]
    report: str
    start: StartPrompt


def run(args: argparse.Namespace, settings: Settings, progress: TraceProgress) -> str:
    """Do the trace and return the report; writes the JSONL when asked."""
    with progress.loading(settings.model.name) as say:
        backend = open_backend(settings, progress=say, influence=False, notice=progress.warn)
    client = getattr(backend, "client", None)
    if client is not None:  # a server's retry notices (with their wait) go to stderr
        client.notice = progress.warn
    try:
        return trace_on(backend, args, settings, progress).report
    finally:
        backend.close()


def trace_on(backend: Backend, args: argparse.Namespace, settings: Settings,
             progress: TraceProgress) -> TraceRun:
    """The trace on an open backend (the command's own, or one the Python API holds): the
    prompt opened as the app opens it, every flag checked against what the backend serves,
    the generation, its lines and report. The backend keeps nothing of it afterwards."""
    try:
        if args.top_logprobs > backend.info.vocab_size:
            raise UsageError(f"--top-logprobs must be at most the vocabulary size, "
                             f"{backend.info.vocab_size}, not {args.top_logprobs}.")
        start = open_prompt(backend, settings.prompts, text=args.prompt, path=args.input, strict=True)
        for warning in start.warnings:  # e.g. no chat template: the plain prompt, as in the app
            progress.warn(warning)
        text, ids = start.text, start.ids
        local = backend.capabilities.sampling
        if not local:  # a server: its own sampler (it returns no logits row for ours)
            _refuse_sampling_flags(args, settings, backend.capabilities.server_sampling)
        if args.attribution and (why := refusal(backend)):
            raise UsageError(why)
        if (args.track or args.track_id) and (why := backend.capabilities.missing("tracked")):
            raise UsageError(why)
        try:
            track = tracked_ids(args.track, backend.encode_plain, backend.token_text,
                                progress.warn) if args.track else []
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        track += [t for t in track_ids_checked(args.track_id, backend.info.vocab_size, UsageError)
                  if t not in track]
        if track:  # a server may fetch them with each step's own request
            backend.follow("trace", track)
        check_length(backend, len(ids), args.max_new_tokens)
        max_new = args.max_new_tokens
        if local:
            sampler = trace_sampler(settings.sampling, backend.sampling_defaults())
            try:
                stop_ids = constrain(backend, sampler, args.constraint) if args.constraint else None
            except ConstraintError as exc:
                raise UsageError(str(exc)) from None
            choice = TraceChoice(backend, "trace", sampler, len(ids))
            decoding, finals = describe_decoding(sampler, settings.sampling), None
        elif args.constraint is not None:  # the server generates under it; the steps replay it
            sampler = trace_sampler(settings.sampling, backend.sampling_defaults())
            asked = sampling_asked(settings.sampling)
            decoding = (describe_decoding(sampler, settings.sampling, server=True) if asked
                        else "greedy (on the server)")
            finals = None
            try:
                choice, max_new, stop_ids = server_replay(backend, ids, args.constraint, max_new,
                                                          sampler.settings if asked else None)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        elif sampling_asked(settings.sampling):  # the server's sampler with our settings
            sampler = trace_sampler(settings.sampling, backend.sampling_defaults())
            choice, stop_ids = TraceChoice(backend, "trace", sampler, len(ids), local=False), None
            decoding, finals = describe_decoding(sampler, settings.sampling, server=True), None
        else:
            choice, decoding, finals, stop_ids = greedy, "greedy (on the server)", None, None
            if backend.capabilities.server_sampling:
                # The server's own greedy draw picks the same token and names the
                # end-of-sequence token when it comes; a local argmax could not tell.
                choice = TraceChoice(backend, "trace", trace_sampler(settings.sampling, None), len(ids),
                                     local=False)
        try:
            # Ctrl-C ends the generation after the step under way; the finished steps are kept.
            with progress.generating(len(ids), max_new) as (on_prefill, on_step), \
                    soft_interrupt() as stop:
                result = trace(backend, ids, max_new, choose=choice, key="trace",
                               prefill_progress=on_prefill, step_progress=on_step, forget=False,
                               stop_ids=stop_ids, interrupted=stop)
        except BackendError as exc:
            partial = partial_trace(exc)
            if partial is None or args.jsonl is None:
                raise
            raise kept(args, backend, partial, exc, getattr(choice, "finals", None)) from None
        args.interrupted = len(result.completion_ids) if result.stop == "interrupted" else None
        if args.interrupted == 0:
            raise KeyboardInterrupt  # nothing finished: the plain "nothing was written"
        try:
            if isinstance(choice, TraceChoice):  # p_final (on a server: where it reported it)
                finals = choice.finals
            try:
                series = backend.tracked("trace", track) if track else None
                attributions = (step_attributions(backend, "trace", result.ids, result.prompt_len,
                                                  args.attribution) if args.attribution else None)
            finally:
                backend.forget("trace")
            check = check_ids(backend, text, result.prompt_ids, result.completion_ids)
            shown = {"decoding": decoding, "max-new-tokens": args.max_new_tokens,
                     "top-logprobs": args.top_logprobs}
            if start.messages is not None:  # (not when the model had no template)
                shown["chat"] = f"system {settings.prompts.system!r}" if settings.prompts.system else "yes"
            if start.forced:
                shown["prefix"] = repr(settings.prompts.prefix)
            if args.constraint is not None:
                shown["constraint"] = args.constraint.describe(60)
            if args.attribution:
                shown["attribution"] = describe_attribution(args.attribution, settings.attribution,
                                                            attributions)
            extras = step_extras(result, series, alone_ids(backend.encode_plain, backend.decode),
                                 backend.token_text)
            report = format_report(backend.info, shown, result, check, backend.decode,
                                   backend.token_text, args.top_logprobs, finals, forced=start.forced,
                                   extras=extras, max_print=args.max_print_tokens)
            if args.tracked_summary is not None:
                write_tracked_summary(args.tracked_summary, result, series, write_atomic)
            lines = record_lines(result.records, backend.decode, start=result.prompt_len, first_step=1,
                                 top=args.top_logprobs)
            lines[0]["prompt_ids"] = list(result.prompt_ids)  # -i reopens it whole
            lines[-1]["stop"] = result.stop  # why the generation ended, on its last line
            lines = add_attribution_fields(lines, attributions)
            lines = add_sampling_fields(lines, finals, series)
            if args.constraint is not None:
                add_valid_fields(lines, choice.valids if local else server_valids(
                    backend, args.constraint, result.completion_ids, lines))
            if args.jsonl is not None and args.format == "gemma":
                write_jsonl(args.jsonl, [gemma_line(result, backend.decode, args.top_logprobs)])
            elif args.jsonl is not None:
                write_jsonl(args.jsonl, lines)
            if args.html is not None:
                write_html(args, backend, result, shown, finals, series, start.forced)
            return TraceRun(result, lines, report, start)
        except BackendError as exc:  # the steps are done; a server that died keeps them
            if args.jsonl is None:
                raise
            raise kept(args, backend, replace(result, stop="error"), exc,
                        getattr(choice, "finals", None)) from None
    finally:
        backend.forget("trace")  # (a held backend keeps nothing of this trace)


def run_args(args: argparse.Namespace) -> int:
    """`main.py trace ...` parsed by explorer.cli: the report on stdout, exit code."""
    progress = TraceProgress.for_terminal()

    def work() -> str:
        check_args(args)
        settings = settings_from_args(args)
        # The engine keeps the top `tokens_to_show` of every distribution: ask for K.
        settings = replace(settings, display=replace(settings.display, tokens_to_show=args.top_logprobs))
        return run(args, settings, progress)

    code = print_report(PROG, work, (UsageError, ConfigError, BackendError, PromptFileError,
                                     ExportError, ConstraintError))
    if code is not None:
        return code
    if (steps := getattr(args, "interrupted", None)) is not None:
        kept = (f"; wrote the {steps} finished steps to {args.jsonl}, its last line marked "
                '"stop": "interrupted"' if args.jsonl else f" after {steps} steps")
        print(f"{PROG}: interrupted{kept}.", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    """`trace` alone (tests, `python -m`): the same as `main.py trace ARGV`."""
    from explorer.cli import main as cli_main

    return cli_main(["trace", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
