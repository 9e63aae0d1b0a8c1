"""What `trace` writes besides its report: the HTML page (--html), and the JSONL of a trace
that a backend error cut short (its finished steps, marked incomplete)."""

from __future__ import annotations

import argparse

from explorer.backend import Backend, BackendError
from explorer.backend.redact import redact
from explorer.core.export import ExportError, record_lines, write_jsonl
from explorer.core.trace import Trace
from explorer.core.trace_constraint import add_valid_fields
from explorer.core.trace_sampling import add_sampling_fields


def write_html(args: argparse.Namespace, backend: Backend, result: Trace, shown: dict,
                finals, series, forced: int) -> None:
    """The trace as one HTML page (explorer.report); finals[n] is step n+1's, the token at
    position prompt_len + n. Raises ExportError (one sentence)."""
    from explorer.report.build import write_report
    from explorer.session.book import FORCED, PROMPT, SAMPLED

    n = result.prompt_len
    origins = (PROMPT,) * (n - forced) + (FORCED,) * forced + (SAMPLED,) * (len(result.records) - n)
    at = None if finals is None else {result.prompt_len + n: f for n, f in enumerate(finals)}
    settings = {**shown, "prompt tokens": result.prompt_len, "stop": result.stop}
    try:
        write_report(args.html, backend, result.records, title=f"trace · {backend.info.name}",
                     settings=settings, finals=at, tracked=series, layer=args.html_layer,
                     top_k=args.top_logprobs, origins=origins)
    except OSError as exc:
        raise ExportError(f"Could not write {args.html}: {exc.strerror or type(exc).__name__}.") from exc


def kept(args: argparse.Namespace, backend: Backend, partial: Trace, exc: BackendError,
          finals) -> BackendError:
    """Write the steps a server error cut short (marked) and say so in one sentence."""
    write_partial(args, backend, partial, str(exc), finals)
    n = len(partial.records) - partial.prompt_len
    return BackendError(
        f"{str(exc).rstrip('.')}; the {n} finished step{'' if n == 1 else 's'} "
        f"{'was' if n == 1 else 'were'} written to {args.jsonl}, marked incomplete "
        '(its last line has "stop": "error").')


def write_partial(args: argparse.Namespace, backend: Backend, partial: Trace, error: str,
                   finals) -> None:
    """The JSONL of a trace a backend error cut short: its finished steps, the last line
    with "stop": "error" and the error's sentence. Token texts come from what the backend
    already knows (a dead server cannot decode)."""
    lines = record_lines(partial.records, known_text(backend), start=partial.prompt_len, first_step=1,
                         top=args.top_logprobs)
    lines[0]["prompt_ids"] = list(partial.prompt_ids)
    if finals is not None and len(finals) >= len(lines):
        lines = add_sampling_fields(lines, finals[: len(lines)], None)
    if args.constraint is not None:
        add_valid_fields(lines, None)
    lines[-1]["stop"] = "error"
    lines[-1]["error"] = redact(error)
    write_jsonl(args.jsonl, lines)


def known_text(backend: Backend):
    """decode() from the backend's own memo of token texts, without a request."""
    def decode(ids) -> str:
        out = []
        for t in ids:
            try:
                raw = backend.token_bytes(int(t))
                out.append(raw.decode("utf-8", errors="replace") if raw is not None
                           else backend.token_text(int(t)))
            except BackendError:
                out.append(f"<{int(t)}>")
        return "".join(out)
    return decode
