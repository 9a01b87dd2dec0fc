"""Azure: a server that resets connections ends, after gitflows' retries, in one RemoteError naming
the blob; never a raw azure-core exception (a read timeout raises the same azure-core class and takes
the same path)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from gitflows import Flow
from gitflows.errors import RemoteError
from gitflows.storage import Azure

KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Resetter:
    """Accepts TCP connections, reads the request, and resets them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_connection_resets_end_in_one_gitflows_error(monkeypatch):
    monkeypatch.setenv("GITFLOWS_RETRY_BACKOFF", "0.01")
    server = Resetter()
    monkeypatch.setenv("AZ", f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
                             f"BlobEndpoint=http://127.0.0.1:{server.port}/devstoreaccount1;")
    storage = Azure(container="flows", connection_string_secret="AZ", blob_name="etl.flow")
    storage.add_flow(Flow("etl"))
    started = time.monotonic()
    try:
        with pytest.raises(RemoteError) as info:
            storage.get_flow("etl")
    finally:
        server.close()
    assert "Azure" in str(info.value) and "etl.flow" in str(info.value)
    assert server.accepted >= 2  # retried by gitflows' policy
    assert time.monotonic() - started < 60
    assert KEY not in str(info.value) + repr(info.value)
