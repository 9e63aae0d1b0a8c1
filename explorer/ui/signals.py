"""SIGTERM and SIGHUP end the app through Textual's own shutdown, which leaves the
alternate screen, turns mouse reporting off and shows the cursor again. Python's default
for both signals ends the process at once and leaves the terminal in that state.

The handler runs on the main thread between two bytecodes, possibly inside the event
loop's own code, so it only schedules `app.exit` with `call_soon_threadsafe` (which is
safe from a signal handler). Outside a running loop (before the app starts or after it
ends) there is no terminal state to restore and the signal ends the process as usual.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def exit_on_signals(app) -> Iterator[None]:
    """While the block runs `app`, SIGTERM / SIGHUP call app.exit(return_code=128 + signal)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise SystemExit(128 + signum) from None
        loop.call_soon_threadsafe(lambda: app.exit(return_code=128 + signum))

    saved = {sig: signal.signal(sig, handle) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
