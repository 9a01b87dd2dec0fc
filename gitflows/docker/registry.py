"""A small client for the container registry HTTP API (distribution v2), through requests.

Enough to push an image without a Docker daemon and to read one back by digest: manifests, blobs
(monolithic upload, cross-repository mount), basic auth and the bearer-token handshake. Every blob
and manifest read is checked against its sha256 digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from gitflows.errors import GitflowsError, IntegrityError, NotFoundError
from gitflows.redact import redact, register_basic_auth, register_secret
from gitflows.remote import HTTPFailure, call

MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryClient:
    def __init__(self, url: str, username: str | None = None, password: str | None = None) -> None:
        import requests

        self.url = (url if "://" in url else f"http://{url}").rstrip("/")
        self.session = requests.Session()
        if password:
            register_secret(password)
        # a user without a password authenticates as "user:" (the pair register_basic_auth masks)
        self._basic: tuple[str, str] | None = (username, password or "") if username else None
        if self._basic:
            register_basic_auth(username, password)
        self._token: str | None = None

    def label(self) -> str:
        return f"registry {self.url}"

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One registry request through :func:`gitflows.remote.call`: connection failures, 5xx and rate
        limits retried under gitflows' policy; 401/403 as AuthenticationError/AccessDeniedError. Other
        statuses are the caller's (:meth:`_check`)."""
        import requests

        url = path if path.startswith("http") else f"{self.url}{path}"
        headers = dict(kwargs.pop("headers", {}) or {})
        seek = getattr(kwargs.get("data"), "seek", None)

        def once() -> Any:
            for attempt in range(2):
                if self._token:
                    headers["Authorization"] = f"Bearer {self._token}"
                if seek is not None:
                    seek(0)  # a retried upload starts again from the first byte
                failed: str | None = None
                try:
                    response = self.session.request(method, url, headers=headers,
                                                    auth=None if self._token else self._basic, timeout=120, **kwargs)
                except requests.RequestException as exc:
                    failed = type(exc).__name__
                if failed is not None:  # raised outside the handler: the library's exception is not carried
                    raise HTTPFailure(None, {}, failed)
                if response.status_code == 401 and attempt == 0 and self._bearer(response):
                    continue
                break
            status = response.status_code
            if status in (401, 403, 408, 429) or status >= 500:
                raise HTTPFailure(status, dict(response.headers), response.text[:200])
            return response

        return call(once, where=self.label(), action=f"{method} {path.split('?')[0]}",
                    auth_hint="check the registry user name and password secrets")

    def _bearer(self, response: Any) -> bool:
        """Answer a ``WWW-Authenticate: Bearer realm=...`` challenge: ask the realm (the registry's token
        service, often another host) for a token with the user's basic credentials. Whether a token came;
        a token service that fails (no answer, 5xx, 429, not JSON) is an :class:`HTTPFailure`, so the
        request is retried or fails under gitflows' policy like any other; one that refuses (401, 403) leaves
        the registry's own 401 to say so."""
        import requests

        challenge = response.headers.get("WWW-Authenticate", "")
        if not challenge.lower().startswith("bearer"):
            return False
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            return False  # no realm, or not one to send credentials to
        failed: str | None = None
        try:
            answer = self.session.get(realm, params=params, auth=self._basic, timeout=60)
        except requests.RequestException as exc:
            failed = f"token service {realm.split('?')[0]}: {type(exc).__name__}"
        if failed is not None:  # raised outside the handler: the library's exception is not carried
            raise HTTPFailure(None, {}, failed)
        if answer.status_code == 429 or answer.status_code >= 500:
            raise HTTPFailure(answer.status_code, dict(answer.headers), f"token service: {answer.text[:200]}")
        if answer.status_code != 200:
            return False
        try:
            body = answer.json()
            token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise HTTPFailure(502, {}, f"token service {realm.split('?')[0]} answered without a token")
        register_secret(token)
        self._token = token
        return True

    def _check(self, response: Any, what: str) -> Any:
        if response.status_code == 404:
            raise NotFoundError(f"{self.label()}: {what}: not found")
        if response.status_code >= 400:
            raise GitflowsError(f"{self.label()}: {what}: HTTP {response.status_code}: {redact(response.text[:200])}")
        return response

    # -- reading ---------------------------------------------------------------------------
    def manifest(self, repo: str, ref: str) -> tuple[dict[str, Any], str, str]:
        """(manifest, its digest, media type); an index is resolved to its linux/amd64 (or first) image."""
        accept = ", ".join(MANIFEST_TYPES + INDEX_TYPES)
        response = self._check(self._request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": accept}),
                               f"manifest {repo}:{ref}")
        data = response.content
        digest = sha256(data)
        if ref.startswith("sha256:") and digest != ref:
            raise IntegrityError(f"{self.label()}: manifest {repo}@{ref} has digest {digest}")
        body = json.loads(data)
        media = body.get("mediaType") or response.headers.get("Content-Type", "").split(";")[0]
        if media in INDEX_TYPES:
            chosen = next((m for m in body["manifests"] if m.get("platform", {}).get("architecture") == "amd64"),
                          body["manifests"][0])
            return self.manifest(repo, chosen["digest"])
        return body, digest, media

    def blob(self, repo: str, digest: str) -> bytes:
        data = self._check(self._request("GET", f"/v2/{repo}/blobs/{digest}"), f"blob {digest[:19]}").content
        if sha256(data) != digest:
            raise IntegrityError(f"{self.label()}: blob {digest} of {repo} does not match its digest")
        return bytes(data)

    # -- writing -----------------------------------------------------------------------------
    def has_blob(self, repo: str, digest: str) -> bool:
        return bool(self._request("HEAD", f"/v2/{repo}/blobs/{digest}").status_code == 200)

    def put_blob(self, repo: str, data: bytes, mount_from: str | None = None) -> str:
        digest = sha256(data)
        if self.has_blob(repo, digest):
            return digest
        params = {"mount": digest, "from": mount_from} if mount_from else None
        started = self._request("POST", f"/v2/{repo}/blobs/uploads/", params=params)
        if started.status_code == 201:  # mounted from the other repository
            return digest
        self._check(started, f"starting an upload to {repo}")
        location = started.headers["Location"]
        if location.startswith("/"):
            location = self.url + location
        sep = "&" if "?" in location else "?"
        self._check(self._request("PUT", f"{location}{sep}digest={digest}", data=data,
                                  headers={"Content-Type": "application/octet-stream"}), f"uploading {digest[:19]}")
        return digest

    def put_manifest(self, repo: str, tag: str, manifest: dict[str, Any]) -> str:
        data = json.dumps(manifest, separators=(",", ":")).encode()
        response = self._check(self._request("PUT", f"/v2/{repo}/manifests/{tag}", data=data,
                                             headers={"Content-Type": manifest["mediaType"]}), f"manifest {repo}:{tag}")
        digest = response.headers.get("Docker-Content-Digest") or sha256(data)
        if digest != sha256(data):
            raise IntegrityError(f"{self.label()}: the registry stored manifest {repo}:{tag} as {digest}, "
                                 f"expected {sha256(data)}")
        return digest


def host_of(url: str | None) -> str:
    """A registry URL without its scheme: ``http://127.0.0.1:5000/team`` -> ``127.0.0.1:5000/team``."""
    return (url or "").split("://", 1)[-1].rstrip("/")


def registry_root(url: str) -> str:
    """``http://host:port/team`` -> ``http://host:port`` (the registry API lives at the root)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.split('/', 1)[0]}" if sep else url.split("/", 1)[0]


def split_image(image: str) -> tuple[str | None, str, str]:
    """``host:port/repo:tag`` or ``repo@sha256:...`` -> (host or None, repo, tag or digest)."""
    host = None
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, image = first, rest
    if "@" in image:
        repo, ref = image.split("@", 1)
    elif ":" in image.rsplit("/", 1)[-1]:
        repo, ref = image.rsplit(":", 1)
    else:
        repo, ref = image, "latest"
    return host, repo, ref
