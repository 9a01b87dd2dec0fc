"""A smart-HTTP git server for tests and benchmarks: `git http-backend` behind a small wrapper.

The wrapper checks an Authorization header (basic or bearer), passes the request to git
http-backend as CGI (protocol v2 via the Git-Protocol header), and records what it served:
requests, response bytes, and every Authorization header and URL it saw. `die_after` cuts a
response off after that many bytes, to play a server dying mid-fetch. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Stats:
    requests: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    auth_headers: list[str | None] = field(default_factory=list)

    def reset(self) -> None:
        self.requests.clear()
        self.bytes_sent = 0
        self.auth_headers.clear()


class GitHTTPServer:
    def __init__(self, root: str, username: str | None = None, password: str | None = None,
                 bearer: str | None = None) -> None:
        self.root = root
        self.expected: set[str] = set()
        if username is not None:
            self.expected.add("Basic " + base64.b64encode(f"{username}:{password}".encode()).decode())
        if bearer is not None:
            self.expected.add(f"Bearer {bearer}")
        self.stats = Stats()
        self.die_after: int | None = None
        self.backend = shutil.which("git-http-backend") or "/usr/lib/git-core/git-http-backend"
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle(self)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _read_body(self, h: BaseHTTPRequestHandler) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(h.rfile.readline().strip(), 16)
                if size == 0:
                    h.rfile.readline()
                    break
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
            return b"".join(chunks)
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        self.stats.requests.append(f"{h.command} {h.path}")
        auth = h.headers.get("Authorization")
        self.stats.auth_headers.append(auth)
        body = self._read_body(h) if h.command == "POST" else b""
        if self.expected and auth not in self.expected:
            msg = b"Authentication required\n"
            h.send_response(401)
            h.send_header("WWW-Authenticate", 'Basic realm="git"')
            h.send_header("Content-Length", str(len(msg)))
            h.end_headers()
            h.wfile.write(msg)
            return
        path, _, query = h.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": self.root, "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": h.command,
            "CONTENT_TYPE": h.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1", "GIT_CONFIG_NOSYSTEM": "1", "HOME": self.root,
        }
        if h.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = h.headers["Git-Protocol"]
        if h.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = h.headers["Content-Encoding"]
        out = subprocess.run([self.backend], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = out.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key.strip(), value.strip()))
        h.send_response(status)
        for key, value in headers:
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if self.die_after is not None and len(payload) > self.die_after:
            h.wfile.write(payload[: self.die_after])
            h.wfile.flush()
            self.stats.bytes_sent += self.die_after
            h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return
        h.wfile.write(payload)
        self.stats.bytes_sent += len(payload)


def make_bare(source_path: str, bare_path: str, allow_filter: bool = True, allow_any_sha1: bool = True) -> None:
    """A bare copy of *source_path* served with the given upload-pack settings."""
    subprocess.run(["git", "clone", "-q", "--bare", source_path, bare_path], check=True)
    configure(bare_path, allow_filter, allow_any_sha1)


def configure(bare_path: str, allow_filter: bool, allow_any_sha1: bool) -> None:
    for key, on in (("uploadpack.allowFilter", allow_filter), ("uploadpack.allowAnySHA1InWant", allow_any_sha1)):
        subprocess.run(["git", "-C", bare_path, "config", key, "true" if on else "false"], check=True)
