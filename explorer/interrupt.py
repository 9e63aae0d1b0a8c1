"""Ctrl-C that stops work gently, so a headless command keeps what it has done.

Inside `soft_interrupt()` the first Ctrl-C only sets a flag: the `cancelled()` callback the
tree search and the trace loop poll between model calls turns True, and the command writes
what it finished (marked incomplete). A second Ctrl-C raises KeyboardInterrupt as usual,
for a user who does not want to wait for the model call under way.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class _Flag:
    def __init__(self, on_first: Callable[[], None] | None) -> None:
        self.hit = False
        self.on_first = on_first

    def __call__(self) -> bool:
        return self.hit

    def handle(self, signum, frame) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True
        if self.on_first is not None:
            self.on_first()


@contextmanager
def soft_interrupt(on_first: Callable[[], None] | None = None) -> Iterator[Callable[[], bool]]:
    """Yield `cancelled()`: True once Ctrl-C was pressed. Outside the main thread (where no
    signal handler can be set) it never turns True and Ctrl-C behaves as before."""
    flag = _Flag(on_first)
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    old = signal.signal(signal.SIGINT, flag.handle)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, old)
