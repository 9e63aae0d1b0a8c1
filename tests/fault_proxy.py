"""A proxy on 127.0.0.1 in front of a real server that misbehaves on request: it forwards
every call to the server and, while a fault is set, answers calls to one path with a 500,
invalid JSON, a truncated body, or nothing at all for a while (a stall). Used to check
that each fault becomes one sentence and that nothing is lost.

More faults (issue 22):
- "echo-500": a 500 whose message repeats the Authorization header (a server that leaks
  the key back); "echo-html": a 200 that is not JSON and repeats it too;
- "drip": the real answer, one byte every `drip_s` seconds (each read is quick, the whole
  answer is not);
- "rewrite": the real answer with `rewrite(data)` applied to its JSON (wrong types,
  +Infinity, a positive log-prob, `true` for a token id);
- `dead_after = n`: after n more hits, every call is dropped (a server that died).
`path` names the path that misbehaves: that path's GETs and POSTs, or "*" for every POST.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.fault: str | None = None  # "500", "json", "truncated", "stall", "drop",
        # "echo-500", "echo-html", "drip", "rewrite", or None
        self.drip_s = 2.0
        self.rewrite = lambda data: data
        self.dead_after: int | None = None  # hits left before the server "dies"
        self.hits = 0
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
                matches = self.path == proxy.path or (method == "POST" and proxy.path == "*")
                proxy.hits += matches
                hit = matches and bool(proxy.fault)
                if matches and proxy.dead_after is not None:
                    if proxy.dead_after <= 0:
                        self.close_connection = True
                        self.connection.close()
                        return None
                    proxy.dead_after -= 1
                if hit and proxy.fault in ("echo-500", "echo-html"):
                    said = f"invalid key: {auth}"
                    if proxy.fault == "echo-500":
                        return self._send(500, json.dumps({"error": {"message": said}}).encode())
                    return self._send(200, f"<html><body>{said}</body></html>".encode())
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
                if hit and proxy.fault == "rewrite":
                    content = json.dumps(proxy.rewrite(json.loads(content))).encode()
                if hit and proxy.fault == "drip":
                    return self._drip(answer.status_code, content)
                return self._send(answer.status_code, content)

            def _drip(self, status: int, content: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                try:
                    for i in range(len(content)):
                        self.wfile.write(content[i: i + 1])
                        self.wfile.flush()
                        time.sleep(proxy.drip_s)
                except OSError:  # the client gave up: what the test wants
                    self.close_connection = True

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
