"""A registry token service, as Docker Hub, GHCR and GitLab run beside their registries: the registry answers
401 with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...``; the client asks the realm, with basic
credentials, for a token; the registry checks the token's signature against the certificate it trusts.

The token is a JWT signed RS256 with a self-signed certificate sent in its ``x5c`` header (what
docker/distribution verifies against ``rootcertbundle``). ``mode`` plays a failing service: "ok", "500",
"garbage" (200, not JSON), "refuse" (401 whatever the credentials), "hangup" (the connection closed
unanswered). Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class TokenService:
    def __init__(self, tmp: Path, username: str, password: str, service: str = "gitflows-registry") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.service, self.issuer = service, "gitflows-token-service"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gitflows test token signer")])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                     .not_valid_after(now + dt.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = tmp / "token-signer.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.mode = "ok"
        self.requests: list[dict] = []  # query of every token request, and whether it carried the right credentials
        service_ = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service_._answer(self)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def registry_auth(self) -> str:
        """The ``auth:`` section of a docker-registry configuration trusting this service."""
        return (f"auth:\n  token:\n    realm: {self.realm}\n    service: {self.service}\n    issuer: {self.issuer}\n"
                f"    rootcertbundle: {self.cert_path}\n")

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        query = {k: v for k, v in parse_qs(urlsplit(h.path).query).items()}
        good = h.headers.get("Authorization") == self.expected
        self.requests.append({"query": query, "authorized": good})
        if self.mode == "hangup":
            h.close_connection = True
            h.connection.close()
            return None
        if self.mode == "500":
            return self._send(h, 500, b"token service unavailable", "text/plain")
        if self.mode == "garbage":
            return self._send(h, 200, b"<html>sign in</html>", "text/html")
        if self.mode == "refuse" or not good:
            return self._send(h, 401, json.dumps({"details": "incorrect username or password"}).encode())
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        token = self._sign({"iss": self.issuer, "sub": "robot", "aud": self.service, "access": access})
        self._send(h, 200, json.dumps({"token": token, "access_token": token, "expires_in": 300,
                                       "issued_at": dt.datetime.now(dt.timezone.utc).isoformat()}).encode())

    def _sign(self, claims: dict) -> str:
        import time

        import jwt
        from cryptography.hazmat.primitives import serialization

        now = int(time.time())
        x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        return jwt.encode({**claims, "iat": now, "nbf": now - 10, "exp": now + 300, "jti": uuid.uuid4().hex},
                          self.key, algorithm="RS256", headers={"x5c": [x5c]})

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, kind: str = "application/json") -> None:
        h.send_response(status)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
