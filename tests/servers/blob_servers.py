"""Blob servers on 127.0.0.1 for the tests: moto (S3), gcp-storage-emulator (GCS), Azurite (Azure),
and a small webhook server that stores what it receives."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .fixtures import free_port, wait_for_port

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Proc:
    def __init__(self, argv: list[str], port: int, what: str, env: dict | None = None, cwd: str | None = None) -> None:
        self.port = port
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})}, cwd=cwd)
        wait_for_port(port, self.proc, what, timeout=60)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _bin(name: str) -> str | None:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def start_moto(auth: bool = False) -> Proc:
    binary = _bin("moto_server")
    if binary is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    env = {"INITIAL_NO_AUTH_ACTION_COUNT": "0"} if auth else {}
    return Proc([binary, "-H", "127.0.0.1", "-p", str(port)], port, "moto server", env)


def start_gcs() -> Proc:
    binary = _bin("gcp-storage-emulator")
    if binary is None:
        pytest.skip("gcp-storage-emulator is not installed (pip install gcp-storage-emulator)")
    port = free_port()
    return Proc([binary, "start", "--host=127.0.0.1", f"--port={port}", "--in-memory"], port, "gcp-storage-emulator")


def azurite_binary() -> str | None:
    local = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    for candidate in (os.environ.get("GITFLOWS_AZURITE"), str(local),
                      shutil.which("azurite-blob")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def start_azurite(tmp: Path) -> Proc:
    binary = azurite_binary()
    if binary is None:
        pytest.skip("Azurite is not installed (.ci/run installs azurite@3.35.0 into .tools/)")
    port = free_port()
    return Proc([binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(tmp), "--silent",
                 "--skipApiVersionCheck", "--disableTelemetry", "--loose"], port, "Azurite")


def azurite_connection_string(port: int, key: str = AZURITE_KEY) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")


class WebhookServer:
    """Stores request bodies by path (POST/PUT), returns them (GET); optional bearer token."""

    def __init__(self, token: str | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self) -> bool:
                auth = self.headers.get("Authorization")
                server.requests.append((self.command, self.path, auth))
                if token is not None and auth != f"Bearer {token}":
                    self._reply(401, b'{"error": "unauthorized"}')
                    return False
                return True

            def do_POST(self) -> None:
                if not self._authorized():
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.objects[self.path.split("?")[0]] = body
                self._reply(201, b'{"stored": "%s", "size": %d}' % (self.path.encode(), len(body)))

            do_PUT = do_POST

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                data = server.objects.get(self.path.split("?")[0])
                if data is None:
                    self._reply(404, b'{"error": "not found"}')
                else:
                    self._reply(200, data, "application/octet-stream")

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
