"""Serve a FakeAPI over real HTTP on 127.0.0.1 (benchmarks use this to include real round trips)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _NoMock:
    def add_callback(self, *args, **kwargs) -> None:
        pass


NO_MOCK = _NoMock()


class _Request:
    def __init__(self, method: str, url: str, headers, body: bytes | None = None) -> None:
        self.method, self.url, self.headers, self.body = method, url, headers, body


def serve(make_fake, latency: float = 0.0):
    """Start a server on a free port; *make_fake(base_url)* builds the fake. Returns (fake, server).
    *latency* seconds pass before each answer (a network round trip, for benchmarks); ``server.latency``
    changes it later. ``server.max_in_flight`` is the most requests it was answering at once."""
    holder = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms a request
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._answer("POST", self.rfile.read(length) if length else b"")

        def do_GET(self) -> None:
            self._answer("GET", None)

        def _answer(self, method: str, body: bytes | None) -> None:
            with server.lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                self._reply(method, body)
            finally:
                with server.lock:
                    server.in_flight -= 1

        def _reply(self, method: str, body: bytes | None) -> None:
            if server.latency:
                import time

                time.sleep(server.latency)
            fake = holder["fake"]
            status, headers, body = fake._dispatch(_Request(method, f"http://127.0.0.1:{port}{self.path}",
                                                            self.headers, body))
            data = body if isinstance(body, bytes) else body.encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.latency = latency
    server.lock, server.in_flight, server.max_in_flight = threading.Lock(), 0, 0  # requests answered at once
    port = server.server_address[1]
    holder["fake"] = make_fake(f"http://127.0.0.1:{port}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return holder["fake"], server
