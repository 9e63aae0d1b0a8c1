"""The servers the tests start die with the test process, however it ends: a pytest run
(a subprocess here) holding a server is stopped with SIGTERM, SIGINT or SIGKILL, and then
no process of the server's group is left. (A run stopped with SIGTERM once left vLLM and
llama-server running for an hour.)

The stand-in server is what tests/servers.py starts for vLLM in miniature: a process that
answers HTTP and has a child of its own (vLLM's engine subprocess), here one that ignores
SIGTERM, so only a sweep of the whole group stops it. The same check runs on a real
llama-server where one is installed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

STAND_IN = """
import http.server, os, subprocess, sys
port, pids = int(sys.argv[1]), sys.argv[2]
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
with open(pids + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.replace(pids + ".tmp", pids)
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Ok).serve_forever()
"""

HOLDING_TEST = """
import os, sys, time
from pathlib import Path
import servers

def test_holds_a_server(tmp_path):
    kind, out = {kind!r}, Path({out!r})
    if kind == "stand-in":
        port = servers.free_port()
        server = servers.Server("stand-in", [sys.executable, str(out / "stand_in.py"), str(port),
                                str(out / "pids")], dict(os.environ), port, out / "server.log", "/")
    else:
        server = servers.llama_server(out, servers.gguf_for())
    server.start()
    try:
        (out / "ready").write_text(str(server.proc.pid))
        time.sleep(600)
    finally:
        server.stop()
"""


def gone(pid: int) -> bool:
    """No such process, or only its zombie (its parent died; nothing may reap it here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is pgid."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def wait_for(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def run_and_stop(tmp_path: Path, kind: str, how: signal.Signals) -> tuple[int, list[int]]:
    """Start pytest on a test that holds a server, stop pytest with `how` once the server is
    up; returns the guard's pid (the group's id) and the pids known inside the group."""
    (tmp_path / "stand_in.py").write_text(STAND_IN)
    (tmp_path / "test_hold.py").write_text(textwrap.dedent(HOLDING_TEST.format(kind=kind, out=str(tmp_path))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parent)]))
    pytest_run = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                                   str(tmp_path / "test_hold.py")], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = tmp_path / "ready"
    try:
        assert wait_for(lambda: ready.exists() or pytest_run.poll() is not None, 300), "the server never started"
        assert ready.exists(), f"the holding test ended first ({pytest_run.returncode})"
        guard = int(ready.read_text())
        pids = [guard] + group_members(guard)
        if kind == "stand-in":
            pids += [int(p) for p in (tmp_path / "pids").read_text().split()]
        os.kill(pytest_run.pid, how)
        pytest_run.wait(timeout=60)
        return guard, sorted(set(pids))
    finally:
        if pytest_run.poll() is None:
            pytest_run.kill()
            pytest_run.wait()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_a_stand_in_server_dies_with_the_pytest_run(tmp_path, how):
    guard, pids = run_and_stop(tmp_path, "stand-in", how)
    try:
        assert len(pids) >= 2  # the server and its own child (and the guard)
        assert wait_for(lambda: all(gone(p) for p in pids) and not group_members(guard), 30), \
            f"left running after {how.name}: {[p for p in pids if not gone(p)]}"
    finally:
        for p in pids:  # (only after a failure is anything left)
            if not gone(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_a_llama_server_dies_with_the_pytest_run(tmp_path, how):
    import servers

    if not servers.LLAMA_SERVER.exists():
        servers.missing(f"llama-server is not built ({servers.LLAMA_SERVER} not found)")
    servers.gguf_for()  # converted here, not inside the run that is stopped
    guard, pids = run_and_stop(tmp_path, "llama", how)
    try:
        assert pids  # llama-server (and the guard)
        assert wait_for(lambda: all(gone(p) for p in pids) and not group_members(guard), 30), \
            f"left running after {how.name}: {[p for p in pids if not gone(p)]}"
    finally:
        for p in pids:
            if not gone(p):
                os.kill(p, signal.SIGKILL)
