"""A proxy on 127.0.0.1 in front of a real server that misbehaves on request: it forwards
every call to the server and, while a fault is set, answers POSTs to one path with a 500,
invalid JSON, a truncated body, or nothing at all for a while (a stall). Used to check
that each fault becomes one sentence and that nothing is lost."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.fault: str | None = None  # "500", "json", "truncated", "stall", "drop", or None
        self.path = "/v1/completions"  # which POST path misbehaves ("*": all)
        self.stall_s = 5.0
        self.seen_auth: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization")
                if auth:
                    proxy.seen_auth.append(auth)
                hit = method == "POST" and proxy.fault and proxy.path in (self.path, "*")
                if hit and proxy.fault == "stall":
                    time.sleep(proxy.stall_s)
                if hit and proxy.fault == "500":
                    return self._send(500, b'{"error": {"message": "CUDA out of memory (simulated)"}}')
                if hit and proxy.fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return None
                try:
                    answer = httpx.request(method, proxy.upstream + self.path, content=body,
                                           headers={"Content-Type": "application/json"}, timeout=300)
                except httpx.HTTPError:  # upstream gone (e.g. a stalled call outlived the test)
                    return self._send(502, b'{"error": "upstream unreachable"}')
                content = answer.content
                if hit and proxy.fault == "json":
                    return self._send(200, b"<html>502 Bad Gateway</html>")
                if hit and proxy.fault == "truncated":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content[: len(content) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.close()
                    return None
                return self._send(answer.status_code, content)

            def _send(self, status: int, content: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

        return Handler
