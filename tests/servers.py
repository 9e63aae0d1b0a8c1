"""Real inference servers for the remote-backend tests: vLLM and llama-server started on a
free 127.0.0.1 port, serving the embedded model, and always stopped afterwards.

They are installed once per machine by tools/install_servers.sh into a cache folder
($TOKEN_EXPLORER_SERVERS, default ~/.cache/token-explorer-servers). Without them the tests
skip with a sentence saying so, except when TOKEN_EXPLORER_REQUIRE_SERVERS=1 (set by
.ci/run after installing them): then a missing server is a failure, so CI can never pass
by skipping.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from explorer.config import EMBEDDED_MODEL_DIR

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("TOKEN_EXPLORER_SERVERS", Path.home() / ".cache" / "token-explorer-servers"))
VLLM_PYTHON = CACHE / "vllm-venv" / "bin" / "python"
LLAMA_SRC = CACHE / "llama.cpp"
LLAMA_SERVER = LLAMA_SRC / "build" / "bin" / "llama-server"
READY_TIMEOUT = 600.0  # vLLM's start on a loaded 2-core machine can take minutes


def require_servers() -> bool:
    return os.environ.get("TOKEN_EXPLORER_REQUIRE_SERVERS") == "1"


def missing(reason: str):
    """Skip locally; fail when CI said the servers are installed."""
    if require_servers():
        pytest.fail(f"{reason} (TOKEN_EXPLORER_REQUIRE_SERVERS=1: tools/install_servers.sh should have installed it)")
    pytest.skip(f"{reason}; run tools/install_servers.sh to install the servers")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GUARD = Path(__file__).with_name("server_guard.py")


class Server:
    """One server process in its own process group (vLLM starts an engine subprocess),
    under tests/server_guard.py: the group dies with this process, however it ends (SIGTERM,
    SIGINT or SIGKILL of pytest, where no finally block runs). `proc` is the guard, the
    group's leader: signals to its group reach the server."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path,
                 ready_path: str):
        self.name, self.port, self.log = name, port, log
        self.url = f"http://127.0.0.1:{port}"
        self._argv, self._env, self._ready = argv, env, ready_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        with open(self.log, "wb") as out:
            # sys.executable: the guard needs nothing but the standard library. Its parent-
            # death signal follows the thread that starts it: fixtures run on the main thread.
            self.proc = subprocess.Popen([sys.executable, str(GUARD), str(os.getpid()), "--", *self._argv],
                                         env=self._env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + self._ready, timeout=2).status_code == 200:
                    return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready after {READY_TIMEOUT:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        """Stop the process group we started (SIGTERM, then SIGKILL after 20 s)."""
        if self.proc is None or self.proc.poll() is not None:
            self._reap_group()
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._reap_group()

    def kill(self) -> None:
        """Die at once, as a crashed server does (fault tests)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def _reap_group(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def vllm_server(log_dir: Path, model_dir: Path = EMBEDDED_MODEL_DIR, *extra: str) -> Server:
    if not VLLM_PYTHON.exists():
        missing(f"vLLM is not installed ({VLLM_PYTHON} not found)")
    port = free_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_LOGGING_LEVEL="WARNING",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_NO_USAGE_STATS="1",
               DO_NOT_TRACK="1")
    env.pop("VIRTUAL_ENV", None)
    argv = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
            "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "1024",
            "--dtype", "float32", "--enforce-eager", "--max-logprobs", "64",
            # Log-probs of what the sampler draws from (p_final) when a request samples;
            # a greedy request's are the raw model's, so one server serves every test.
            "--logprobs-mode", "processed_logprobs", *extra]
    return Server("vLLM", argv, env, port, log_dir / f"vllm-{port}.log", "/v1/models")


def gguf_for(model_dir: Path = EMBEDDED_MODEL_DIR) -> Path:
    """The model converted to f32 GGUF, cached by the weights' and tokenizer's hash."""
    digest = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        digest.update((model_dir / name).read_bytes())
    out = CACHE / "gguf" / f"{model_dir.name}-{digest.hexdigest()[:16]}-f32.gguf"
    if out.exists():
        return out
    if not VLLM_PYTHON.exists() or not (LLAMA_SRC / "convert_hf_to_gguf.py").exists():
        missing("the GGUF converter is not installed")
    run = subprocess.run(
        [str(VLLM_PYTHON), str(REPO / "tools" / "convert_embedded_gguf.py"), str(model_dir),
         "--out", str(out), "--llama-cpp", str(LLAMA_SRC)],
        capture_output=True, text=True, timeout=900,
        env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"))
    if run.returncode != 0:
        raise RuntimeError(f"GGUF conversion failed:\n{run.stderr[-3000:]}")
    return out


def llama_server(log_dir: Path, gguf: Path, *extra: str) -> Server:
    if not LLAMA_SERVER.exists():
        missing(f"llama-server is not built ({LLAMA_SERVER} not found)")
    port = free_port()
    # f32 KV cache and no flash attention: next-token log-probs then equal transformers'
    # within ~6e-6 (defaults: ~2e-3). One slot so the prompt cache is the one we filled.
    argv = [str(LLAMA_SERVER), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port),
            "-c", "1024", "-np", "1", "-t", "2", "-ctk", "f32", "-ctv", "f32", "-fa", "off",
            "--no-webui", *extra]
    return Server("llama-server", argv, dict(os.environ), port, log_dir / f"llama-{port}.log", "/health")


# -- pytest fixtures (registered for every test module by conftest's pytest_plugins) -------
@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory):
    """One vLLM server for the session (it takes tens of seconds to start)."""
    # Structured outputs (trace --json-schema on a server) with llguidance and compact JSON:
    # with free whitespace the tiny model pads with tabs for ever, and vLLM 0.32 takes the
    # whitespace setting only here, for its xgrammar or guidance backend. Requests without
    # a constraint are not affected.
    server = vllm_server(tmp_path_factory.mktemp("vllm"), EMBEDDED_MODEL_DIR,
                         "--structured-outputs-config", '{"backend": "guidance", "disable_any_whitespace": true}')
    try:
        yield server.start().url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def vllm_remote(vllm_url):
    """A remote backend on the shared vLLM server, fresh for each test module (its caches
    and request counts start empty), with the server's top 20 in each table."""
    from explorer.remote import open_remote

    backend = open_remote(vllm_url, tokens_to_show=20)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def embedded_gguf():
    return gguf_for()


@pytest.fixture(scope="session")
def llama_url(tmp_path_factory, embedded_gguf):
    server = llama_server(tmp_path_factory.mktemp("llama"), embedded_gguf)
    try:
        yield server.start().url
    finally:
        server.stop()


@pytest.fixture
def own_llama_server(tmp_path, embedded_gguf):
    """A llama-server of the test's own, which the test may kill (it starts in ~1 s)."""
    server = llama_server(tmp_path, embedded_gguf)
    try:
        yield server.start()
    finally:
        server.stop()
