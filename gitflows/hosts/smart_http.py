"""Git protocol v2 ``fetch`` and ``ls-refs`` over smart HTTP, one POST each, for a client that knows what it wants.

A general git client first asks the server what it can do (``GET info/refs``) and what its refs
are (``ls-refs``) before every fetch: three round trips. The loader already knows the commit (a
pinned SHA) or the blob ids (from the commit's trees), so it sends the ``fetch`` command straight
away: one request for the commit's trees (``deepen 1``, ``filter blob:none``), one per level of
imports for the blobs. A server that cannot answer that way (protocol v0 only, no ``filter``,
``want`` of an unadvertised object refused) answers with something that is not a packfile:
:class:`NotUnderstood` is raised and the caller falls back to the general client, which asks first.

Only the response framing is parsed here (pkt-lines, sections, side-band); the packfile itself is
handed to dulwich, which indexes and checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class NotUnderstood(Exception):
    """The server did not answer the fetch with a packfile (it needs the general client's negotiation)."""


class FetchFailed(Exception):
    """An HTTP failure: *status* (None when there was no HTTP answer) and the server's text (redacted later)."""

    def __init__(self, status: int | None, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


@dataclass
class Fetched:
    pack: bytes
    shallow: list[str] = field(default_factory=list)


def pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


def fetch_request(wants: list[str], depth: int | None = None, filter_spec: str | None = None) -> bytes:
    """The body of a protocol v2 ``fetch`` for *wants*, ending with ``done`` (no negotiation)."""
    body = [pkt(b"command=fetch\n"), pkt(b"agent=gitflows\n"), b"0001", pkt(b"no-progress\n"), pkt(b"ofs-delta\n")]
    body += [pkt(b"want %s\n" % w.encode()) for w in wants]
    if depth is not None:
        body.append(pkt(b"deepen %d\n" % depth))
    if filter_spec is not None:
        body.append(pkt(b"filter %s\n" % filter_spec.encode()))
    body += [pkt(b"done\n"), b"0000"]
    return b"".join(body)


def _lines(data: bytes) -> list[bytes | None]:
    """pkt-lines of *data*; None stands for a flush (0000), delimiter (0001) or response end (0002)."""
    out: list[bytes | None] = []
    pos = 0
    while pos < len(data):
        try:
            size = int(data[pos:pos + 4], 16)
        except ValueError:
            raise NotUnderstood("the answer is not pkt-line framed") from None
        if size < 4:
            out.append(None)
            pos += 4
            continue
        if pos + size > len(data):
            raise NotUnderstood("the answer ends inside a pkt-line (cut off)")
        out.append(data[pos + 4:pos + size])
        pos += size
    return out


def parse_fetch_response(data: bytes) -> Fetched:
    """The packfile (side-band 1 joined) and shallow commits of a protocol v2 fetch response."""
    fetched = Fetched(b"")
    section: str | None = None
    pack: list[bytes] = []
    for line in _lines(data):
        if line is None:  # end of a section (or of the answer)
            if section == "packfile":
                break
            section = None
            continue
        if line.startswith(b"ERR "):
            raise FetchFailed(200, line[4:].decode("utf-8", "replace").strip())
        if section is None:
            section = line.strip().decode("ascii", "replace")
            if section not in ("shallow-info", "packfile", "acknowledgments", "wanted-refs", "packfile-uris"):
                raise NotUnderstood(f"unexpected section {section[:40]!r}")
        elif section == "shallow-info" and line.startswith(b"shallow "):
            fetched.shallow.append(line[8:48].decode())
        elif section == "packfile":
            band, payload = line[:1], line[1:]
            if band == b"\x01":
                pack.append(payload)
            elif band == b"\x03":
                raise FetchFailed(200, payload.decode("utf-8", "replace").strip())
    if section != "packfile" or not pack:
        raise NotUnderstood("no packfile in the answer")
    fetched.pack = b"".join(pack)
    return fetched


def ls_refs_request(prefixes: list[str]) -> bytes:
    body = [pkt(b"command=ls-refs\n"), pkt(b"agent=gitflows\n"), b"0001", pkt(b"peel\n"), pkt(b"symrefs\n")]
    body += [pkt(b"ref-prefix %s\n" % p.encode()) for p in prefixes]
    return b"".join([*body, b"0000"])


def parse_ls_refs_response(data: bytes) -> dict[str, str]:
    """``{ref name: commit}`` of an ls-refs answer; an annotated tag also appears as ``<tag>^{}`` (peeled)."""
    refs: dict[str, str] = {}
    for line in _lines(data):
        if line is None:
            break
        if line.startswith(b"ERR "):
            raise FetchFailed(200, line[4:].decode("utf-8", "replace").strip())
        parts = line.decode("utf-8", "replace").strip().split(" ")
        if len(parts) < 2 or len(parts[0]) != 40:
            raise NotUnderstood("not an ls-refs answer")
        refs[parts[1]] = parts[0]
        for attribute in parts[2:]:
            if attribute.startswith("peeled:"):
                refs[parts[1] + "^{}"] = attribute[len("peeled:"):]
    return refs


def ls_refs(pool: Any, url: str, prefixes: list[str], auth: str | None, timeout: float = 60.0) -> dict[str, str]:
    """One POST of a protocol v2 ``ls-refs`` limited to *prefixes*."""
    return parse_ls_refs_response(_post(pool, url, ls_refs_request(prefixes), auth, timeout))


def fetch(pool: Any, url: str, wants: list[str], auth: str | None, *, depth: int | None = None,
          filter_spec: str | None = None, timeout: float = 60.0) -> Fetched:
    """POST a protocol v2 fetch to ``<url>/git-upload-pack`` through the urllib3 *pool*. *auth* is the
    ``Authorization`` header value, sent to this URL only (redirects are not followed)."""
    return parse_fetch_response(_post(pool, url, fetch_request(wants, depth, filter_spec), auth, timeout))


def _post(pool: Any, url: str, body: bytes, auth: str | None, timeout: float) -> bytes:
    import urllib3

    headers = {"Content-Type": "application/x-git-upload-pack-request",
               "Accept": "application/x-git-upload-pack-result", "Git-Protocol": "version=2",
               "User-Agent": "git/gitflows"}
    if auth:
        headers["Authorization"] = auth
    try:
        response = pool.request("POST", url.rstrip("/") + "/git-upload-pack", body=body, headers=headers,
                                redirect=False, timeout=timeout, retries=False, preload_content=True)
    except urllib3.exceptions.HTTPError as exc:
        raise FetchFailed(None, type(exc).__name__) from None
    if response.status >= 300:
        text = (response.data or b"")[:300].decode("utf-8", "replace").strip()
        raise FetchFailed(response.status, text or f"HTTP {response.status}",
                          {k.lower(): v for k, v in response.headers.items()})
    kind = response.headers.get("Content-Type", "")
    if "x-git-upload-pack-result" not in kind:
        raise NotUnderstood(f"answered with {kind or 'no content type'}")
    return bytes(response.data or b"")


class RequestsPool:
    """What :func:`fetch` and :func:`ls_refs` need of a urllib3 pool (``request`` and its answer), over a
    ``requests`` session: a host that already talks to the server through ``requests`` (Bitbucket
    Server's REST client) sends its git requests on the same connections."""

    @dataclass
    class Answer:
        status: int
        headers: dict[str, str]
        data: bytes

    def __init__(self, session: Any, timeout: float | None = None) -> None:
        self.session, self.timeout = session, timeout  # *timeout*: at most this, whatever a caller asks

    def request(self, method: str, url: str, *, body: bytes, headers: dict[str, str], timeout: float,
                **_: Any) -> RequestsPool.Answer:
        import requests

        try:
            response = self.session.request(method, url, data=body, headers=headers, allow_redirects=False,
                                            timeout=min(timeout, self.timeout) if self.timeout else timeout)
        except requests.RequestException as exc:
            raise FetchFailed(None, type(exc).__name__) from None
        return RequestsPool.Answer(response.status_code, dict(response.headers), response.content)
