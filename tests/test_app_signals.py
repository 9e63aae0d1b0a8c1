"""SIGTERM and SIGHUP during autoplay leave the terminal as it was (issue 22, item 7): the
app runs on a real pseudo-terminal, and what it writes after the signal must leave the
alternate screen and show the cursor again. Waits are on text the app draws."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEAVE_ALT_SCREEN, SHOW_CURSOR, MOUSE_OFF = b"\x1b[?1049l", b"\x1b[?25h", b"\x1b[?1000l"


class Terminal:
    def __init__(self, argv: list[str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TERM": "xterm-256color"}
        self.child = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
                                      env=env, start_new_session=True)
        os.close(slave)
        self.out = b""

    def read_until(self, marker: bytes | None, since: int = 0) -> bool:
        """Read until `marker` shows up after offset `since` (None: until the app closes
        the terminal). The select timeout only guards against a test that would hang."""
        while marker is None or marker not in self.out[since:]:
            ready, _, _ = select.select([self.master], [], [], 600)
            if not ready:
                return False
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the terminal is gone
                return marker is None
            if not data:
                return marker is None
            self.out += data
        return True

    def close(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
        self.child.wait(60)
        os.close(self.master)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_autoplay_restores_the_terminal(sig):
    term = Terminal([sys.executable, "main.py", "--model", "tiny", "--max-tokens", "100000"])
    try:
        assert term.read_until(b"p_base"), term.out[-2000:]  # the table is drawn
        mark = len(term.out)
        os.write(term.master, b"g")
        assert term.read_until(b"Autoplay:", mark)  # the notice that autoplay runs
        mark = len(term.out)
        term.child.send_signal(sig)
        assert term.read_until(None)
        code = term.child.wait(60)
    finally:
        term.close()
    after = term.out[mark:]
    assert LEAVE_ALT_SCREEN in after and SHOW_CURSOR in after and MOUSE_OFF in after
    assert code == 128 + sig
    assert b"Traceback" not in term.out
