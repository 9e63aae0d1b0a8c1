"""Where output goes: checks on an output path made before any model work, free file names
for a save that writes several files, and the report on stdout.

The writer itself (explorer/atomic.py) respects what is at a path when it writes; these
checks only make its refusals come before a slow model load instead of after it.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path


def output_problem(path: Path, reading: Iterable[Path | None] = (), *,
                   create_folder: bool = False) -> str | None:
    """Why `path` cannot take an output file, as one sentence, or None. `reading`: the files
    this run reads (an output over its own input would destroy it). `create_folder`: the
    writer makes missing folders (the tree export), so a missing one is no problem."""
    path = Path(path)
    for source in reading:
        if source is not None and _same_file(path, Path(source)):
            return f"Could not write {path}: it is the input file this run reads."
    if path.is_dir():
        return f"Could not write {path}: it is a folder."
    if path.exists():
        mode = path.stat().st_mode
        if stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
            kind = "a block device" if stat.S_ISBLK(mode) else "a socket"
            return f"Could not write {path}: it is {kind}, which a file must not replace."
    folder = _existing_ancestor(path.parent) if create_folder else path.parent
    if not folder.is_dir():
        if create_folder:
            return f"Could not write {path}: {folder} is a file, not a folder."
        return f"Could not write {path}: the folder {folder} does not exist."
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"Could not write {path}: permission denied."
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _existing_ancestor(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def free_stem(folder: Path, stem: str, suffixes: Iterable[str]) -> str:
    """`stem`, or `stem-2`, `stem-3`, ...: the first for which no `<stem><suffix>` exists, so
    a save that writes several files (.txt, .json, .jsonl) overwrites none of them."""
    suffixes = tuple(suffixes)
    candidate, n = stem, 2
    while any(os.path.lexists(folder / f"{candidate}{suffix}") for suffix in suffixes):
        candidate, n = f"{stem}-{n}", n + 1
    return candidate


def write_stdout(text: str) -> str | None:
    """Write the report to stdout and flush it; the reason as one sentence when that fails
    (`> /dev/full`, a closed pipe). Afterwards stdout points at /dev/null so Python's own
    flush at exit cannot print a traceback for the same failure."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
        return f"Could not write the report to standard output: {reason}."
    return None


def print_report(prog: str, make_report, errors: tuple[type[BaseException], ...]) -> int | None:
    """A command's last mile, the same for each: make_report() (the work) printed on stdout.
    Returns None when that went well, else the exit code after one sentence on stderr:
    2 for one of `errors` or an unwritable stdout, 130 for Ctrl-C (nothing written)."""
    from explorer.backend.redact import redact

    try:
        report = make_report()
    except errors as exc:
        print(f"{prog}: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing was written.", file=sys.stderr)
        return 130
    if why := write_stdout(report):
        print(f"{prog}: {why}", file=sys.stderr)
        return 2
    return None
