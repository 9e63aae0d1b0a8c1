"""Issue 22's server faults: a key echoed back, an answer that drips, a server that never
answers while the user quits, retries against nothing, a connect timeout, answers of the
wrong type or with impossible log-probs, and a server that dies mid-trace. Each is one
sentence (exit code 2 for `trace`), no traceback, the key nowhere, and nothing lost.

Servers are real: vLLM behind tests/fault_proxy.py (which misbehaves on request), and for
the network faults real sockets (a closed port, a listener that never accepts or never
answers)."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fault_proxy import FaultProxy

from explorer.backend import Cancelled
from explorer.core.trace_command import main as trace_main
from explorer.remote import RemoteError, Timeouts, open_remote
from explorer.remote.client import ServerClient

SECRET = "sk-test-4f1c9e0d-never-show-me"
REPO = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


class Silent:
    """A listener that accepts and never says a word (a server stuck before its answer)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def hung_up(self, within: float) -> bool:
        """Whether every client that connected has closed its end within `within` s (what
        it sent is read and dropped; EOF means the client let go)."""
        end = time.monotonic() + within
        for conn in list(self.held):
            try:
                while True:
                    conn.settimeout(max(0.01, end - time.monotonic()))
                    if not conn.recv(65536):
                        break
            except (TimeoutError, socket.timeout):
                return False
            except OSError:
                continue
        return bool(self.held)

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


# -- network faults (no inference server needed) ----------------------------------------
def test_a_connect_timeout_names_the_connect_timeout_not_the_read_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # never accepted: once its queue is full, connects hang
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    client = ServerClient(f"http://127.0.0.1:{port}", timeouts=Timeouts(connect=1, read=7, retries=0))
    try:
        with pytest.raises(RemoteError) as err:
            client.get("/v1/models")
    finally:
        client.close()
        listener.close()
        for s in fillers:
            s.close()
    assert str(err.value) == (f"Could not connect to the server at 127.0.0.1:{port} within 1 s "
                              "(connect_timeout).")


def test_retries_wait_at_most_two_seconds_each_and_say_so():
    port = closed_port()
    waits, notices = [], []
    client = ServerClient(f"http://127.0.0.1:{port}", key=SECRET, sleep=waits.append,
                          notice=notices.append,
                          timeouts=Timeouts(connect=1, read=5, retries=6, backoff=1.0))
    with pytest.raises(RemoteError) as err:
        client.get("/v1/models")
    client.close()
    assert waits == [1, 2, 2, 2, 2, 2]  # doubling, capped (uncapped it was 63 s in all)
    assert len(notices) == 6
    assert notices[0] == (f"Cannot reach the server at 127.0.0.1:{port} (connection refused or "
                          "host unknown); trying again in 1 s (try 2 of 7).")
    assert "trying again in 2 s (try 7 of 7)" in notices[-1]
    assert str(err.value).startswith(f"Cannot reach the server at 127.0.0.1:{port}")


def test_trace_says_each_retry_on_stderr(capsys, tmp_path):
    port = closed_port()
    config = tmp_path / "config.toml"
    config.write_text("[server]\nretries = 3\nconnect_timeout = 1\n", encoding="utf-8")
    code = trace_main(["--server", f"http://127.0.0.1:{port}", "--prompt", "Hi", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("trying again in") == 3, err
    assert err.splitlines()[-1].startswith(f"token-explorer trace: Cannot reach the server at 127.0.0.1:{port}")


def test_close_wakes_a_request_stuck_on_a_silent_server_at_once():
    silent = Silent()
    client = ServerClient(silent.url, timeouts=Timeouts(connect=2, read=60, retries=0))
    got = {}

    def ask():
        try:
            client.get("/v1/models")
        except BaseException as exc:
            got["exc"] = exc
            got["at"] = time.monotonic()

    worker = threading.Thread(target=ask)
    worker.start()
    time.sleep(0.5)  # the request is out and waiting
    closed_at = time.monotonic()
    client.close()
    worker.join(timeout=15)
    silent.close()
    assert not worker.is_alive()
    assert isinstance(got["exc"], Cancelled)
    assert got["at"] - closed_at < 1.0


EXIT_SCRIPT = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
from explorer.remote.client import ServerClient, Timeouts
client = ServerClient(sys.argv[1], timeouts=Timeouts(connect=2, read=60, retries=0))
ThreadPoolExecutor(1).submit(client.get, "/v1/models")  # a worker waiting on the server
time.sleep(0.5)
print("main is done", flush=True)
"""


def test_a_worker_waiting_on_a_server_does_not_hold_up_the_exit():
    """As the app's workers are when the user quits: the interpreter's exit closes the
    clients, the worker returns, the process ends."""
    silent = Silent()
    try:
        start = time.monotonic()
        run = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, silent.url], cwd=REPO,
                             capture_output=True, text=True, timeout=30)
        took = time.monotonic() - start
    finally:
        silent.close()
    assert run.returncode == 0 and "main is done" in run.stdout, run.stderr
    assert "Traceback" not in run.stderr
    assert took < 15  # the request alone would wait 60 s


# -- faults from a real vLLM behind the proxy ---------------------------------------------
@pytest.fixture(scope="module")
def proxy(vllm_url):
    with FaultProxy(vllm_url) as p:
        yield p


@pytest.fixture
def fault(proxy):
    def set_fault(kind, path="/v1/completions", **extra):
        proxy.fault, proxy.path = kind, path
        for name, value in extra.items():
            setattr(proxy, name, value)
        return proxy
    yield set_fault
    proxy.fault, proxy.path, proxy.dead_after = None, "/v1/completions", None
    proxy.rewrite = lambda data: data


def run_cli(capsys, proxy, tmp_path, *flags, max_new=6):
    out = tmp_path / "trace.jsonl"
    code = trace_main(["--server", proxy.url, "--prompt", "Once upon a time", "--max-new-tokens",
                       str(max_new), "--jsonl", str(out), *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err, out


def assert_one_sentence(code, out, err, where):
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("token-explorer trace: ") and lines[0].endswith("."), err
    assert where in lines[0], err
    assert SECRET not in out + err
    return lines[0]


@pytest.mark.parametrize("kind, path, says", [
    ("echo-500", "/v1/completions", "answered /v1/completions with 500: invalid key: Bearer (key hidden)"),
    ("echo-500", "/v1/models", "answered /v1/models with 500: invalid key: Bearer (key hidden)"),
    ("echo-html", "/v1/completions", "sent something that is not JSON for /v1/completions"),
])
def test_a_server_that_echoes_the_key_never_shows_it(monkeypatch, capsys, tmp_path, fault, kind, path, says):
    monkeypatch.setenv("TOKEN_EXPLORER_API_KEY", SECRET)
    proxy = fault(kind, path)
    code, out, err, jsonl = run_cli(capsys, proxy, tmp_path)
    line = assert_one_sentence(code, out, err, proxy.url.removeprefix("http://"))
    assert says in line and line.count("(key hidden)") == 1, line
    assert f"Bearer {SECRET}" in proxy.seen_auth  # the key did travel (and came back)
    assert not jsonl.exists()


def test_an_answer_that_drips_ends_at_the_read_timeout(fault):
    backend = open_remote(fault(None).url, key=SECRET, timeouts=Timeouts(connect=5, read=120, retries=0))
    ids = tuple(backend.encode("The cat sat"))
    backend.client.timeouts = Timeouts(connect=5, read=2, retries=0)  # connected: now strict
    fault("drip", drip_s=1.0)  # ~1 s per byte: a whole answer would take an hour; each read 1 s
    start = time.monotonic()
    with pytest.raises(RemoteError) as err:
        backend.sync("k", ids)
    took = time.monotonic() - start
    backend.close()
    assert took < 15
    assert str(err.value).endswith("did not finish its answer to /v1/completions within 2 s (read_timeout).")


def _rows(data, change):
    for choice in data.get("choices") or []:
        for row in choice.get("prompt_logprobs") or []:
            if isinstance(row, dict):
                for entry in row.values():
                    change(entry)
    return data


def _tops(data, value):
    for choice in data.get("choices") or []:
        for top in (choice.get("logprobs") or {}).get("top_logprobs") or []:
            for key in top:
                top[key] = value
    return data


def _token_ids(data, value):
    for choice in data.get("choices") or []:
        if "token_ids" in choice:
            choice["token_ids"] = value
    return data


def _models(data, **fields):
    for card in data.get("data") or []:
        card.update(fields)
    return data


@pytest.mark.parametrize("path, rewrite, says", [
    ("/v1/completions", lambda d: _rows(d, lambda e: e.update(rank="abc")), "a rank that is not a whole number"),
    ("/tokenize", lambda d: {**d, "tokens": ["a", "b"]}, "a token id that is not a whole number"),
    ("/v1/completions", lambda d: _tops(d, "-0.5"), "a log-probability that is not a number"),
    ("/v1/models", lambda d: _models(d, max_model_len="abc"), "a max_model_len that is not a whole number"),
    ("/v1/completions", lambda d: _tops(d, math.inf), "a log-probability above 0 (inf)"),
    ("/v1/completions", lambda d: _tops(d, 5.0), "a log-probability above 0 (5)"),
    ("/v1/completions", lambda d: _token_ids(d, [True, False]), "a token id that is not a whole number (True)"),
], ids=["rank-abc", "tokenize-strings", "string-logprob", "max_model_len-abc", "infinity", "logprob-5",
        "token-ids-bools"])
def test_answers_of_the_wrong_type_or_impossible_numbers_are_one_sentence(
        capsys, tmp_path, fault, path, rewrite, says):
    proxy = fault("rewrite", path, rewrite=rewrite)
    code, out, err, jsonl = run_cli(capsys, proxy, tmp_path)
    line = assert_one_sentence(code, out, err, proxy.url.removeprefix("http://"))
    assert says in line
    assert not jsonl.exists()  # no silently wrong numbers written


def test_a_server_that_dies_mid_trace_keeps_the_finished_steps(capsys, tmp_path, fault):
    proxy = fault(None, "/v1/completions")  # one request per step, counted by the proxy
    hits = proxy.hits
    code, _, _, whole_run = run_cli(capsys, proxy, tmp_path, max_new=12)
    assert code == 0
    full = [json.loads(line) for line in whole_run.read_text(encoding="utf-8").splitlines()]
    requests = proxy.hits - hits
    whole_run.rename(tmp_path / "full.jsonl")
    # The same run again, the server gone four steps before the end.
    proxy.dead_after = requests - 4
    code, out, err, cut = run_cli(capsys, proxy, tmp_path, max_new=12)
    line = assert_one_sentence(code, out, err, proxy.url.removeprefix("http://"))
    lines = [json.loads(text) for text in cut.read_text(encoding="utf-8").splitlines()]
    assert 0 < len(lines) < len(full)
    assert len(lines) == len(full) - 4
    assert line.endswith(f"; the {len(lines)} finished steps were written to {cut}, marked incomplete "
                         '(its last line has "stop": "error").')
    for got, want in zip(lines, full):  # every finished step as the whole run had it
        for name in ("step", "position", "token_id", "token", "rank", "top"):
            assert got[name] == want[name], name
        assert abs(got["logprob"] - want["logprob"]) < 1e-6
    assert all("stop" not in got for got in lines[:-1])
    assert lines[-1]["stop"] == "error"
    assert lines[-1]["error"] == (f"Cannot reach the server at {proxy.url.removeprefix('http://')} "
                                  "(it closed the connection mid-answer).")


def test_a_llama_server_killed_mid_trace_leaves_the_steps_it_finished(monkeypatch, capsys, tmp_path,
                                                                    own_llama_server):
    """A real kill: the server process dies (SIGKILL) once 5 steps are done."""
    from contextlib import contextmanager

    from explorer.core import trace_command
    from explorer.core.progress import TraceProgress

    class KillAfterFive(TraceProgress):
        @contextmanager
        def generating(self, prompt_len, max_new_tokens):
            def on_step(done, total):
                if done == 5:
                    own_llama_server.kill()
            yield (lambda *_: None), on_step

    monkeypatch.setattr(trace_command.TraceProgress, "for_terminal", classmethod(lambda cls: KillAfterFive(None)))
    out = tmp_path / "cut.jsonl"
    code = trace_main(["--server", own_llama_server.url, "--prompt", "Once upon a time",
                       "--max-new-tokens", "40", "--jsonl", str(out)])
    captured = capsys.readouterr()
    where = own_llama_server.url.removeprefix("http://")
    line = assert_one_sentence(code, captured.out, captured.err, where)
    assert line.startswith(f"token-explorer trace: Cannot reach the server at {where}")
    assert line.endswith(f"; the 5 finished steps were written to {out}, marked incomplete "
                         '(its last line has "stop": "error").')
    lines = [json.loads(text) for text in out.read_text(encoding="utf-8").splitlines()]
    assert [got["step"] for got in lines] == [1, 2, 3, 4, 5]
    assert all(got["top"] and got["logprob"] <= 0 for got in lines[1:])
    assert lines[-1]["stop"] == "error" and lines[-1]["error"].startswith("Cannot reach the server")


async def test_quitting_the_app_while_it_waits_on_a_server_lets_go_at_once():
    """ctrl+q while the app connects to a server that never answers: the request ends
    with the app (its connection closed within a second), not at read_timeout."""
    from app_fixtures import SIZE
    from app_fixtures import app_settings as settings_for
    from dataclasses import replace

    from explorer.config import ServerSettings
    from explorer.ui.app import TokenExplorerApp

    silent = Silent()
    settings = replace(settings_for(), server=ServerSettings(url=silent.url, read_timeout=60, retries=0))
    app = TokenExplorerApp(settings)
    try:
        async with app.run_test(size=SIZE) as pilot:
            while not silent.held:  # the app's request has reached the server
                await pilot.pause(0.05)
            await pilot.press("ctrl+q")
        assert silent.hung_up(within=1.0)
    finally:
        silent.close()
