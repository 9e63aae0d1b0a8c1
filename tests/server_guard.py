"""Run one test server so that it dies with the test process, however that ends.

    python server_guard.py PARENT_PID -- ARGV...

tests/servers.py starts this guard in a new process group, in place of the server. The
guard asks the kernel for SIGTERM when its parent (pytest) dies (prctl PR_SET_PDEATHSIG):
that covers pytest stopped by SIGTERM, SIGINT or SIGKILL, where no finally block or atexit
handler runs. It starts the server as its child, in its own group (and with the same
parent-death signal, should the guard itself be killed). On SIGTERM, SIGINT or SIGHUP it
sends SIGTERM to the whole group, gives the server GRACE_S seconds to stop, then SIGKILLs
what is left of the group: vLLM's engine subprocess too, and the guard last. While no
signal comes it only waits, and exits with the server's own exit status.

A server run without the guard (start_new_session only) outlived a test run stopped with
SIGTERM by an hour: nothing was left to stop its process group.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
GRACE_S = 15.0  # below tests/servers.py's 20 s wait, so the guard's sweep always runs
POLL_S = 0.1


def die_with_parent(parent: int) -> None:
    """SIGTERM to this process when `parent` dies (Linux); at once if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # it died between our fork and the prctl
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    parent, sep, command = int(argv[0]), argv[1], argv[2:]
    assert sep == "--" and command, "usage: server_guard.py PARENT_PID -- ARGV..."
    stopping: list[float] = []

    def stop(signum, frame) -> None:
        if not stopping:
            stopping.append(time.monotonic())

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    if os.getpgrp() != os.getpid():  # (servers.py starts it in a session of its own)
        os.setpgid(0, 0)  # killpg(0) below must never reach the test process's group
    die_with_parent(parent)
    guard = os.getpid()
    server = subprocess.Popen(command, preexec_fn=lambda: die_with_parent(guard))
    while True:
        if stopping:
            # Every process of the group, the server's own children included; the guard
            # ignores its own copy (its handler only notes the first signal).
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.killpg(0, signal.SIGTERM)
            deadline = stopping[0] + GRACE_S
            while server.poll() is None and time.monotonic() < deadline:
                time.sleep(POLL_S)
            os.killpg(0, signal.SIGKILL)  # what is left, this guard last
        code = server.poll()
        if code is not None:
            return code if code >= 0 else 128 - code
        time.sleep(POLL_S)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
