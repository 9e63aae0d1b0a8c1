"""One way to write a file so a reader sees the old file or the whole new one, never a part,
and so that writing never destroys what the path pointed at.

Every file we write for the user (saved prompts, JSONL exports, token trees, the recent
models list) goes through `write_text_atomic`. What it does depends on what is at the path:

- nothing, or a regular file: a temporary file in the same folder, flushed to disk, then
  renamed over the target; an existing file keeps its permission bits (and, where we may,
  its owner);
- a symlink: the file it points at is written as above and the link is kept;
- a character device (/dev/null, /dev/stdout, /dev/full) or a FIFO with a reader: written
  through, as a shell's `>` would; a FIFO that nobody reads is refused rather than waited on;
- a block device, a socket or anything else: refused.

Temporary files are named `.<name>.<pid>-<random>.te-tmp`. One is removed on every exit we
can see: an exception, Ctrl-C, and SIGTERM / SIGHUP arriving while we write (a process with
its own handler for those, like the app, exits through it and `atexit` removes the file).
A `kill -9` leaves it; the next write to the same target removes any of ours whose process
is gone. Failures raise OSError whose `strerror` is the reason, for the caller's sentence.
"""

from __future__ import annotations

import atexit
import errno
import os
import signal
import stat
import tempfile
import threading
from pathlib import Path

SUFFIX = ".te-tmp"
_LIVE: set[str] = set()  # temporary files being written now, removed at exit if still here
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def write_text_atomic(path: Path, text: str, *, newline: str = "") -> None:
    """Write `text` to `path` (see the module's note). Raises OSError; nothing half-written stays."""
    path = Path(path)
    data = text.encode("utf-8") if newline in ("", "\n") else text.replace("\n", newline).encode("utf-8")
    try:
        info = path.stat()  # what the path leads to, through any symlinks
    except FileNotFoundError:
        info = None  # nothing there, or a dangling link: the file is created
    try:
        if info is not None and not stat.S_ISREG(info.st_mode):
            # Opened by its own name: /dev/stdout -> /proc/self/fd/1 -> a pipe has no
            # real path to resolve, but opening the link reaches the pipe.
            _write_special(path, info, data)
            return
        target = Path(os.path.realpath(path)) if path.is_symlink() else path
        _remove_stale(target)
        with _signals_raise():
            _replace(target, data, info)
    except OSError as exc:  # name the user's path, never our temporary file
        raise OSError(exc.errno, exc.strerror or type(exc).__name__, str(path)) from None


def temp_prefix(target: Path) -> str:
    return f".{target.name}."


def _replace(target: Path, data: bytes, info: os.stat_result | None) -> None:
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f"{temp_prefix(target)}{os.getpid()}-",
                                   suffix=SUFFIX)
        _LIVE.add(tmp)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if info is None:
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a saved file is not
        else:
            os.chmod(tmp, stat.S_IMODE(info.st_mode))
            if os.name == "posix" and (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
                try:
                    os.chown(tmp, info.st_uid, info.st_gid)
                except OSError:
                    pass  # only root may give a file away; the mode is kept either way
        os.replace(tmp, target)
        _LIVE.discard(tmp)
        tmp = None
    finally:
        if tmp is not None:
            _LIVE.discard(tmp)
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _write_special(target: Path, info: os.stat_result, data: bytes) -> None:
    """Write through a character device or a FIFO; refuse what a file cannot replace."""
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "it is a folder", str(target))
    if stat.S_ISFIFO(mode):
        try:  # non-blocking open: a FIFO without a reader fails now instead of hanging
            fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise OSError(errno.ENXIO, "it is a FIFO that nobody is reading", str(target)) from None
            raise
        os.set_blocking(fd, True)
    elif stat.S_ISCHR(mode):
        fd = os.open(target, os.O_WRONLY)
    else:
        kind = "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) \
            else "not a regular file"
        raise OSError(errno.EINVAL, f"it is {kind}, which a file must not replace", str(target))
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()


def _remove_stale(target: Path) -> None:
    """Remove our temporary files for `target` left by a process that no longer runs."""
    prefix = temp_prefix(target)
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(SUFFIX)):
            continue
        pid = name[len(prefix):-len(SUFFIX)].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            try:
                os.unlink(target.parent / name)
            except OSError:
                pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but is not ours to signal
    return True


class _signals_raise:
    """While writing in the main thread of a process that kept the default SIGTERM/SIGHUP
    action (which would end it without running `finally`), turn them into SystemExit so
    the temporary file is removed; the old handlers come back afterwards."""

    def __enter__(self):
        self.saved = {}
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in _SIGNALS:
            try:
                if signal.getsignal(sig) == signal.SIG_DFL:
                    self.saved[sig] = signal.signal(sig, _exit_on_signal)
            except (ValueError, OSError):
                pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


@atexit.register
def _remove_live() -> None:
    for tmp in list(_LIVE):
        try:
            os.unlink(tmp)
        except OSError:
            pass
