"""HTTP to one inference server: connection reuse, deadlines, retries, one-sentence errors.

The API key travels only in the Authorization header. It is never part of a URL, a log
line or an error message: every error text here is built from the server's address (host
and port, userinfo stripped) and what the server said, and passes through
explorer.backend.redact (a server may echo the header back).

Deadlines, not per-read timeouts: httpx's read timeout is per socket read, so a server
that drips one byte a second never trips it. Each request runs in a daemon thread while
the caller waits on an event with a deadline (`read` seconds from sending the request);
the caller gives up at the deadline, and `close()` wakes every waiting caller at once, so
quitting never waits for a server. A daemon thread left reading a dead answer stops at its
next chunk and never holds up the interpreter's exit.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from explorer.backend.errors import Cancelled, ModelLoadError
from explorer.backend.redact import KEY_VARIABLES, looks_like_key, redact, remember_secret
from explorer.remote.checks import RemoteError, check_token, field, finite, logprob, whole

__all__ = ["KEY_VARIABLES", "RemoteError", "ServerClient", "Timeouts", "api_key", "check_token",
           "check_url", "close_all", "field", "finite", "logprob", "whole"]

MAX_BACKOFF = 2.0  # seconds: the doubling stops here, so many retries stay a steady beat


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 120.0  # the whole answer; a long prompt's prefill on a busy server takes a while
    retries: int = 2  # extra tries of idempotent calls after a connection failure
    backoff: float = 0.25  # seconds before the first retry, doubled each time up to MAX_BACKOFF


def api_key(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    for name in KEY_VARIABLES:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def check_url(url: str) -> tuple[str, str]:
    """(base URL without a trailing /v1 or slash, 'host:port' to name it in messages).
    Only http and https; credentials in the URL are refused (they belong in the key)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        if looks_like_key(url):
            raise ModelLoadError("The server URL must start with http:// or https:// and name a host; "
                                 "what was given looks like an API key (not shown): put a key in "
                                 "TOKEN_EXPLORER_API_KEY.")
        raise ModelLoadError(f"The server URL must start with http:// or https:// and name a host, not {_safe(url)!r}.")
    if parts.username or parts.password:
        raise ModelLoadError("Put the API key in TOKEN_EXPLORER_API_KEY, not in the server URL.")
    path = parts.path.rstrip("/").removesuffix("/v1")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.netloc}{path}", f"{parts.hostname}:{port}"


def _safe(url: str) -> str:
    """A URL fit to show: no userinfo, no query (either could hold a secret)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    shown = f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else url.split("@")[-1][:60]
    return redact(shown)


_LIVE: "weakref.WeakSet[ServerClient]" = weakref.WeakSet()


def close_all() -> None:
    """Close every open client: waiting callers return at once (the app calls this when it
    quits, and the interpreter before it joins threads)."""
    for client in list(_LIVE):
        client.close()


# Before the interpreter joins worker threads at exit (a worker may be waiting on a
# server): concurrent.futures uses the same hook for its own pools.
if hasattr(threading, "_register_atexit"):
    threading._register_atexit(close_all)


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    content: bytes


class ServerClient:
    """One keep-alive connection pool to one server. Thread-safe (httpx.Client is).
    `notice`: where retry notices go (trace: stderr; the app: a notification)."""

    def __init__(self, url: str, *, key: str | None = None, timeouts: Timeouts = Timeouts(),
                 sleep: Callable[[float], None] | None = None,
                 notice: Callable[[str], None] | None = None):
        self.base, self.where = check_url(url)
        self.timeouts = timeouts
        self._sleep = sleep
        self.notice = notice
        remember_secret(key)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(
            base_url=self.base, headers=headers,
            timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect),
            limits=httpx.Limits(max_keepalive_connections=8, max_connections=16),
        )
        self._closed = threading.Event()
        self._waiting: set[threading.Event] = set()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()  # to hang up on close
        self._lock = threading.Lock()
        _LIVE.add(self)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Wake every caller waiting on an answer (they raise Cancelled), then close the
        pool. Never waits for the server."""
        self._closed.set()
        with self._lock:
            for event in self._waiting:
                event.set()
            sockets = list(self._sockets)
        for sock in sockets:  # wakes a reading thread and tells the server we left
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self._http.close()
        except Exception:  # a connection another thread holds: its thread is abandoned
            pass
        _LIVE.discard(self)

    def get(self, path: str) -> Any:
        return self._call("GET", path, None, idempotent=True)

    def post(self, path: str, body: dict, *, idempotent: bool = True) -> Any:
        """POST JSON. Every call we make is a pure function of its body (greedy or seeded),
        so retrying after a dropped connection cannot append a token twice."""
        return self._call("POST", path, body, idempotent=idempotent)

    # ------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None, *, idempotent: bool) -> Any:
        tries = 1 + (self.timeouts.retries if idempotent else 0)
        delay = self.timeouts.backoff
        for attempt in range(tries):
            try:
                answer = self._once(method, path, body)
                break
            except httpx.ConnectTimeout:
                raise RemoteError(
                    f"Could not connect to the server at {self.where} within "
                    f"{self.timeouts.connect:g} s (connect_timeout).") from None
            except httpx.TimeoutException:
                raise self._too_slow(path) from None
            except httpx.TransportError as exc:
                if self.closed:
                    raise Cancelled("The connection to the server was closed.") from None
                reason = _reason(exc)
                if attempt + 1 == tries:
                    raise RemoteError(f"Cannot reach the server at {self.where} ({reason}).") from None
                wait = min(delay, MAX_BACKOFF)
                self._say(f"Cannot reach the server at {self.where} ({reason}); trying again in "
                          f"{wait:g} s (try {attempt + 2} of {tries}).")
                self._pause(wait)
                delay *= 2
        if answer.status in (401, 403):
            raise RemoteError(
                f"The server at {self.where} refused the request ({answer.status}): "
                "set TOKEN_EXPLORER_API_KEY to a key it accepts.")
        if answer.status >= 400:
            raise RemoteError(
                f"The server at {self.where} answered {path} with {answer.status}: "
                f"{_said(answer)}.")
        try:
            return json.loads(answer.content)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError):
            raise RemoteError(
                f"The server at {self.where} sent something that is not JSON for {path} "
                f"({_snippet(answer.content)}).") from None

    def _too_slow(self, path: str) -> RemoteError:
        return RemoteError(f"The server at {self.where} did not finish its answer to {path} "
                           f"within {self.timeouts.read:g} s (read_timeout).")

    def _say(self, text: str) -> None:
        if self.notice is not None:
            self.notice(redact(text))

    def _pause(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif self._closed.wait(seconds):
            raise Cancelled("The connection to the server was closed.")

    def _once(self, method: str, path: str, body: dict | None) -> _Answer:
        """One request in a daemon thread; this thread waits until the answer is complete,
        `read` seconds after the request went out (the connect phase has httpx's own
        connect timeout), or close()."""
        if self.closed:
            raise Cancelled("The connection to the server was closed.")
        done = threading.Event()
        stop = threading.Event()  # tells the reading thread to drop the answer
        box: dict[str, Any] = {}
        started = time.monotonic()

        def trace(event: str, info: dict) -> None:
            # httpcore's documented trace hook: the read deadline starts when the request
            # goes out, so a slow connect is the connect timeout's business.
            if event.endswith("send_request_headers.started") and "sent" not in box:
                box["sent"] = time.monotonic()
            elif event == "connection.connect_tcp.complete":
                stream = info.get("return_value")
                sock = stream.get_extra_info("socket") if hasattr(stream, "get_extra_info") else None
                if isinstance(sock, socket.socket):
                    with self._lock:
                        self._sockets.add(sock)

        def run() -> None:
            try:
                with self._http.stream(method, path, json=body, extensions={"trace": trace}) as response:
                    chunks = []
                    for chunk in response.iter_bytes():
                        if stop.is_set():
                            return
                        chunks.append(chunk)
                    box["answer"] = _Answer(response.status_code, response.reason_phrase, b"".join(chunks))
            except BaseException as exc:  # handed to the waiting caller
                box["error"] = exc
            finally:
                done.set()

        with self._lock:
            self._waiting.add(done)
        try:
            threading.Thread(target=run, name=f"request {path}", daemon=True).start()
            limit_connect = self.timeouts.connect + self.timeouts.read
            while not done.is_set():
                sent = box.get("sent")
                end = (sent + self.timeouts.read) if sent is not None else started + limit_connect
                left = end - time.monotonic()
                if left <= 0:
                    stop.set()
                    raise self._too_slow(path)
                done.wait(min(left, 0.25))  # re-read `sent` now and then
        finally:
            with self._lock:
                self._waiting.discard(done)
        if self.closed:
            stop.set()
            raise Cancelled("The connection to the server was closed.")
        if "error" in box:
            raise box["error"]
        return box["answer"]


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unknown"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "it closed the connection mid-answer"
    return type(exc).__name__


def _said(answer: _Answer) -> str:
    """What an error answer says, in one short line."""
    try:
        data = json.loads(answer.content)
    except (ValueError, RecursionError):
        return _snippet(answer.content) or answer.reason or "no reason given"
    if isinstance(data, dict):
        err = data.get("error", data.get("message", data.get("detail", data)))
        if isinstance(err, dict):
            err = err.get("message", err)
        return _snippet(str(err).encode())
    return _snippet(answer.content)


def _snippet(raw: bytes, limit: int = 160) -> str:
    # Redacted before it is cut: a key cut in half would no longer be recognised.
    text = redact(" ".join(raw.decode("utf-8", errors="replace").split()))
    text = text.rstrip(".")
    return text if len(text) <= limit else text[:limit] + "…"
