"""HTTP to one inference server: connection reuse, timeouts, retries, one-sentence errors.

The API key travels only in the Authorization header. It is never part of a URL, a log
line or an error message: every error text here is built from the server's address (host
and port, userinfo stripped) and what the server said, never from the request.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from explorer.backend.errors import BackendError, ModelLoadError

KEY_VARIABLES = ("TOKEN_EXPLORER_API_KEY", "OPENAI_API_KEY")


class RemoteError(BackendError):
    """A server that could not be reached or gave an answer we cannot use."""


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 120.0  # a long prompt's prefill on a busy server can take a while
    retries: int = 2  # extra tries of idempotent calls after a connection failure
    backoff: float = 0.25  # seconds before the first retry, doubled each time


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
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else url.split("@")[-1][:60]


class ServerClient:
    """One keep-alive connection pool to one server. Thread-safe (httpx.Client is)."""

    def __init__(self, url: str, *, key: str | None = None, timeouts: Timeouts = Timeouts(),
                 sleep: Callable[[float], None] = time.sleep):
        self.base, self.where = check_url(url)
        self.timeouts = timeouts
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(
            base_url=self.base, headers=headers,
            timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect),
            limits=httpx.Limits(max_keepalive_connections=8, max_connections=16),
        )

    def close(self) -> None:
        self._http.close()

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
                response = self._http.request(method, path, json=body)
                break
            except httpx.TimeoutException:
                raise RemoteError(
                    f"The server at {self.where} did not answer {path} within "
                    f"{self.timeouts.read:g} s.") from None
            except httpx.TransportError as exc:
                if attempt + 1 == tries:
                    raise RemoteError(f"Cannot reach the server at {self.where} ({_reason(exc)}).") from None
                self._sleep(delay)
                delay *= 2
        if response.status_code in (401, 403):
            raise RemoteError(
                f"The server at {self.where} refused the request ({response.status_code}): "
                "set TOKEN_EXPLORER_API_KEY to a key it accepts.")
        if response.status_code >= 400:
            raise RemoteError(
                f"The server at {self.where} answered {path} with {response.status_code}: "
                f"{_said(response)}.")
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            raise RemoteError(
                f"The server at {self.where} sent something that is not JSON for {path} "
                f"({_snippet(response.content)}).") from None


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unknown"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "it closed the connection mid-answer"
    return type(exc).__name__


def _said(response: httpx.Response) -> str:
    """What an error answer says, in one short line."""
    try:
        data = response.json()
    except ValueError:
        return _snippet(response.content) or response.reason_phrase or "no reason given"
    if isinstance(data, dict):
        err = data.get("error", data.get("message", data.get("detail", data)))
        if isinstance(err, dict):
            err = err.get("message", err)
        return _snippet(str(err).encode())
    return _snippet(response.content)


def _snippet(raw: bytes, limit: int = 160) -> str:
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    text = text.rstrip(".")
    return text if len(text) <= limit else text[:limit] + "…"


def field(data: Any, *path: str | int, where: str, what: str) -> Any:
    """data[path...] or a RemoteError naming the missing field (a server of another kind,
    or a version that answers differently)."""
    node = data
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            name = ".".join(str(p) for p in path)
            raise RemoteError(f"The server at {where} answered {what} without the field '{name}'.") from None
    return node


def check_token(token_id, vocab_size: int, where: str) -> int:
    """A token id from a server's answer, checked: outside the vocabulary is an error."""
    try:
        tid = int(token_id)
    except (TypeError, ValueError):
        raise RemoteError(f"The server at {where} sent a token id that is not a number ({token_id!r}).") from None
    if not 0 <= tid < vocab_size:
        raise RemoteError(f"The server at {where} sent token id {tid}, outside the vocabulary of {vocab_size}.")
    return tid


def finite(value, where: str) -> float:
    """A log-probability from a server's answer: a number, not NaN (-inf is kept)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise RemoteError(f"The server at {where} sent a log-probability that is not a number ({value!r}).") from None
    if math.isnan(out):
        raise RemoteError(f"The server at {where} sent a log-probability that is not a number.")
    return out
