"""Any git server over smart HTTP(S), git:// or ssh, through dulwich.

What a cold load of a pinned SHA fetches (protocol v2):

1. the commit at depth 1 with ``filter blob:none``: the commit and its trees, no file contents;
2. the closure's blobs by id, one fetch per level of imports (the script; then what it imports...).

A server that does not offer ``filter`` is detected before anything is downloaded (dulwich would
otherwise ignore the filter and send every file): the host then fetches the commit at depth 1 with
its files — a shallow clone of one commit — and serves every read from that. Resolving a branch or
tag costs one ls-refs exchange; a full SHA costs none. Tokens travel in an ``Authorization``
header (never in the URL, a config file or a command line); dulwich attaches it only to requests
for the configured origin.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from gitflows.errors import (
    AuthenticationError,
    ConfigurationError,
    GitflowsError,
    IntegrityError,
    NotFoundError,
    PathNotFoundError,
    RefNotFoundError,
    RepoNotFoundError,
)
from gitflows.hosts import smart_http
from gitflows.hosts.smart_http import NotUnderstood
from gitflows.redact import get_logger, register_basic_auth, register_secret
from gitflows.remote import HTTPFailure, RetryPolicy, call

log = get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Credentials:
    """How to authenticate over HTTP: basic (username, password) or a bearer token.

    Made, the secret parts are registered with the redactor, including the base64 ``user:password``
    form a Basic header carries; repr() never shows them."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    bearer: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        register_basic_auth(self.username, self.password)
        register_secret(self.bearer)


def _no_retries() -> Any:
    """urllib3's own retries off for dulwich's requests: by default it sleeps whatever a 429/503's
    ``Retry-After`` says (an hour, if the server says so). gitflows' policy (gitflows.remote, with
    GITFLOWS_MAX_RATE_LIMIT_WAIT) is the only one that applies. Redirects are still followed."""
    import urllib3

    return urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5,
                         respect_retry_after_header=False, raise_on_status=False)


class _NoFilter(Exception):
    """The server does not offer object filtering (raised before anything is downloaded)."""


class GitUnavailable(Exception):
    """A host made with ``fallback=False`` found the server unable to answer a one-POST protocol v2
    request (no v2, no ``filter``): the caller reads some other way (Bitbucket Server: its REST API)."""


def split_url(url: str) -> tuple[str, Credentials | None]:
    """Remove ``user:password@`` from an http(s) URL; return the clean URL and those credentials."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        from urllib.parse import unquote

        return urlunsplit(parts._replace(netloc=host)), Credentials(unquote(user), unquote(password))
    return url, None


class GitHost:
    probes = False  # the commit's tree is local once fetched: listing it costs nothing
    kind = "git"
    concurrent_reads = 1

    def __init__(self, url: str, credentials: Callable[[], Credentials | None] = lambda: None,
                 secret_name: str | None = None, policy: RetryPolicy | None = None,
                 auth_hint: str | None = None, pool: Any = None, fallback: bool = True) -> None:
        """*pool* (an object with urllib3's ``request``) carries the one-POST requests instead of dulwich's
        pool; with ``fallback=False`` a server that cannot answer them raises :class:`GitUnavailable`
        instead of getting the general client's negotiation (or, without ``filter``, the whole commit)."""
        if "@" in urlsplit(url).netloc and urlsplit(url).scheme in ("http", "https"):
            raise ConfigurationError("the clone URL must not carry credentials; they go in a header")
        self.url = url.rstrip("/")
        self._credentials = credentials
        self._secret_name = secret_name
        # what a 401 tells the user to check (the storage knows which secret and user name were used)
        self._auth_hint = auth_hint or (f"check the token in secret {secret_name}" if secret_name else "")
        self._policy = policy or RetryPolicy(attempts=3)
        self._client: Any = None
        self._path = ""
        self._commits: dict[str, Any] = {}  # sha -> MemoryRepo holding that commit's trees (and maybe blobs)
        self._one_post: bool | None = None  # whether the one-POST v2 fetch works here (None: not tried yet)
        self._pool, self._fallback = pool, fallback
        self._listings: dict[str, TreeListing] = {}  # sha -> its files, from the fetched trees

    def label(self) -> str:
        return f"git {self.url}"

    def check_repo(self) -> None:
        """Nothing to do: a missing repository is its own answer (no git-upload-pack there)."""
        return None

    def cache_key(self) -> tuple[str, ...]:
        parts = urlsplit(self.url)
        if parts.scheme:
            host = (parts.hostname or "local") + (f"-{parts.port}" if parts.port else "")
            path = parts.path
        else:  # scp-like: git@host:org/repo.git
            host, _, path = self.url.partition(":")
            host = host.rsplit("@", 1)[-1]
        segments = [s for s in path.removesuffix(".git").split("/") if s and not s.startswith(".")]
        return ("git", host.replace(":", "-"), *segments)

    # -- client ---------------------------------------------------------------------
    def _get_client(self) -> tuple[Any, str]:
        if self._client is None:
            try:
                from dulwich.client import Urllib3HttpGitClient, get_transport_and_path
            except ImportError:
                raise ConfigurationError("the Git storage needs dulwich:"
                                         " pip install -e '.[git]' in the gitflows checkout") from None
            scheme = urlsplit(self.url).scheme
            if scheme in ("http", "https"):
                from dulwich.client import default_urllib3_manager

                creds = self._credentials()
                import urllib3

                manager = default_urllib3_manager(None, base_url=self.url, timeout=60)
                assert isinstance(manager, urllib3.PoolManager)  # no auth callback asked for: a plain pool
                manager.connection_pool_kw["retries"] = _no_retries()
                kwargs: dict[str, Any] = {"timeout": 60, "pool_manager": manager}
                if creds and creds.bearer:
                    manager.headers = {**manager.headers, "Authorization": f"Bearer {creds.bearer}"}
                elif creds:
                    kwargs.update(username=creds.username, password=creds.password or "")
                parts = urlsplit(self.url)
                base = urlunsplit(parts._replace(path="", query="", fragment=""))
                self._client, self._path = Urllib3HttpGitClient(base, **kwargs), parts.path
            else:
                # like git: GIT_SSH_COMMAND (else GIT_SSH) picks the ssh program and its options;
                # otherwise plain `ssh` with the user's keys, config and known hosts
                ssh_command = os.environ.get("GIT_SSH_COMMAND") or os.environ.get("GIT_SSH") or None
                self._client, self._path = get_transport_and_path(self.url, ssh_command=ssh_command)
            # dulwich only logs when a server ignores a filter, then downloads everything:
            # turn that into an exception raised before the request is sent.
            self._client._warn_filter_objects = _raise_no_filter
        return self._client, self._path

    def _call(self, fn: Callable[[], T], action: str, not_found: type[NotFoundError]) -> T:
        self._get_client()  # a clear ConfigurationError when dulwich is not installed
        from dulwich.client import HTTPUnauthorized
        from dulwich.errors import GitProtocolError, HangupException, NotGitRepository

        def wrapped() -> T:
            try:
                return fn()
            except (_NoFilter, GitflowsError):
                raise
            except HTTPUnauthorized:
                hint = self._auth_hint or "no token configured"
                raise AuthenticationError(f"{self.label()}: {action}: authentication failed (HTTP 401); {hint}") \
                    from None
            except NotGitRepository:
                raise RepoNotFoundError(f"{self.label()}: {action}: no git repository there (or no access)") from None
            except HangupException as exc:
                detail = str(exc).strip()
                if "not found" in detail or "does not appear to be a git repository" in detail or \
                        "not exported" in detail or "No such file" in detail:
                    raise RepoNotFoundError(f"{self.label()}: {action}: no git repository there ({detail})") from None
                raise HTTPFailure(None, {}, f"the server hung up: {detail or 'connection closed'}") from None
            except GitProtocolError as exc:
                detail = str(exc)
                if "not our ref" in detail or "not valid" in detail or "bad object" in detail:
                    raise not_found(f"{self.label()}: {action}: the server does not have it ({detail.strip()})") \
                        from None
                if "unexpected http resp" in detail:
                    status = int(detail.split("resp ")[1].split()[0]) if "resp " in detail else 500
                    raise HTTPFailure(status, {}, detail) from None
                raise HTTPFailure(None, {}, detail) from None
            except KeyError as exc:  # a local repository (file://) without the object asked for
                raise not_found(f"{self.label()}: {action}: the repository does not have {exc}") from None
            except (OSError, EOFError, AssertionError, ValueError) as exc:
                raise HTTPFailure(None, {}, f"{type(exc).__name__}: {exc}") from None

        return call(wrapped, where=self.label(), action=action, not_found=not_found,
                    auth_hint=self._auth_hint,
                    policy=self._policy)

    # -- Host protocol ------------------------------------------------------------------
    def resolve(self, ref: str | None) -> str:
        client, path = self._get_client()
        prefixes = [b"HEAD"] if ref is None else [f"refs/heads/{ref}".encode(), f"refs/tags/{ref}".encode(),
                                                   ref.encode()]
        refs = self._refs(prefixes, f"listing refs for {ref or 'HEAD'}")
        candidates = [b"HEAD"] if ref is None else [f"refs/tags/{ref}^{{}}".encode(), f"refs/heads/{ref}".encode(),
                                                     f"refs/tags/{ref}".encode(), ref.encode()]
        for name in candidates:
            if name in refs:
                return refs[name].decode()
        if ref is None:
            raise RefNotFoundError(f"{self.label()}: the repository has no HEAD (empty repository?)")
        hint = "; give the full 40-character commit SHA" if all(c in "0123456789abcdef" for c in ref.lower()) else ""
        raise RefNotFoundError(f"{self.label()}: no branch or tag {ref!r}{hint}")

    def _refs(self, prefixes: list[bytes], action: str) -> dict[bytes, bytes]:
        """The refs under *prefixes*: one ls-refs POST over smart HTTP, else the general client's exchange."""
        client, path = self._get_client()
        if self._one_post is not False and urlsplit(self.url).scheme in ("http", "https"):
            try:
                found = self._call(lambda: self._direct_ls_refs([p.decode() for p in prefixes]), action,
                                   RefNotFoundError)
                self._one_post = True
                return {k.encode(): v.encode() for k, v in found.items()}
            except NotUnderstood as exc:
                if not self._fallback:
                    raise GitUnavailable(str(exc)) from None
                log.info("%s: the server needs a negotiated exchange (%s); asking it first from now on", self.label(),
                         exc)
                self._one_post = False
        result = self._call(lambda: client.get_refs(path, protocol_version=2, ref_prefix=prefixes), action,
                            RefNotFoundError)
        return {k: v for k, v in dict(result.refs).items() if v is not None}

    def _fetch(self, wants: list[str], action: str, not_found: type[NotFoundError], **kwargs: Any) -> Any:
        from dulwich.repo import MemoryRepo

        client, path = self._get_client()
        if self._one_post is not False and urlsplit(self.url).scheme in ("http", "https"):
            try:
                repo = self._call(lambda: self._direct_fetch(wants, **kwargs), action, not_found)
                self._one_post = True
                return repo
            except NotUnderstood as exc:
                if not self._fallback:
                    raise GitUnavailable(str(exc)) from None
                log.info("%s: the server needs a negotiated fetch (%s); asking it first from now on", self.label(), exc)
                self._one_post = False

        def once() -> Any:
            target = MemoryRepo()
            # ls-refs is limited to HEAD: the wants are object ids, the ref list is not needed
            client.fetch(path, target, determine_wants=lambda refs, depth=None: [w.encode() for w in wants],
                         protocol_version=2, ref_prefix=[b"HEAD"], progress=_Progress(f"{self.label()}: {action}"),
                         **kwargs)
            return target

        return self._call(once, action, not_found)

    def _auth_header(self) -> str | None:
        creds = self._credentials()
        if creds and creds.bearer:
            return f"Bearer {creds.bearer}"
        if creds:
            import base64

            return "Basic " + base64.b64encode(f"{creds.username or ''}:{creds.password or ''}".encode()).decode()
        return None

    def _send_direct(self, send: Callable[[Any, str | None], T]) -> T:
        """*send(pool, auth)* through :mod:`gitflows.hosts.smart_http`, its failures as the general client's."""
        from dulwich.errors import GitProtocolError

        client, _ = self._get_client()
        try:
            return send(self._pool or client.pool_manager, self._auth_header())
        except smart_http.FetchFailed as exc:
            if exc.status == 200:  # the server refused in the protocol ("not our ref", "no such object"...)
                raise GitProtocolError(exc.detail) from None
            if exc.status == 401:
                from dulwich.client import HTTPUnauthorized

                raise HTTPUnauthorized(None, self.url) from None
            if exc.status == 404:  # git-upload-pack is not there: no repository at that URL
                from dulwich.errors import NotGitRepository

                raise NotGitRepository(self.url) from None
            raise HTTPFailure(exc.status, exc.headers, exc.detail) from None

    def _direct_ls_refs(self, prefixes: list[str]) -> dict[str, str]:
        return self._send_direct(lambda pool, auth: smart_http.ls_refs(pool, self.url, prefixes, auth))

    def _direct_fetch(self, wants: list[str], depth: int | None = None, filter_spec: bytes | None = None) -> Any:
        """One POST (:mod:`gitflows.hosts.smart_http`): the objects *wants* name, into a fresh MemoryRepo."""
        from dulwich.repo import MemoryRepo

        fetched = self._send_direct(lambda pool, auth: smart_http.fetch(
            pool, self.url, wants, auth, depth=depth, filter_spec=filter_spec.decode() if filter_spec else None))
        target = MemoryRepo()
        pack, commit, abort = target.object_store.add_pack()
        try:
            pack.write(fetched.pack)
            commit()
        except BaseException:
            abort()
            raise
        return target

    def _fetch_or_missing(self, wants: list[str], what: str, not_found: type[NotFoundError], **kwargs: Any) -> Any:
        """Fetch; a server that hangs up on every attempt is taken to lack the objects (git upload-pack
        closes the connection on a want it does not have, without an error line)."""
        from gitflows.errors import RemoteError

        try:
            return self._fetch(wants, f"fetching {what}", not_found, **kwargs)
        except RemoteError as exc:
            # upload-pack exits on a want it lacks: the client sees the hang-up, or, when it was still
            # writing its request (ssh, git://), a broken pipe or a reset, depending on timing
            if not any(sign in str(exc) for sign in ("hung up", "Broken pipe", "Connection reset")):
                raise
            raise not_found(f"{self.label()}: {what}: the server closed the connection on every attempt; it most "
                            "likely does not have it (force-pushed away, or garbage-collected)") from None

    def _commit_repo(self, sha: str) -> Any:
        if sha not in self._commits:
            try:
                repo = self._fetch_or_missing([sha], f"commit {sha} (trees only)", RefNotFoundError,
                                              depth=1, filter_spec=b"blob:none")
            except _NoFilter:
                log.info("%s: the server offers no object filter; fetching commit %s with its files", self.label(), sha)
                repo = self._fetch_or_missing([sha], f"commit {sha}", RefNotFoundError, depth=1)
            if sha.encode() not in repo.object_store:
                raise RefNotFoundError(f"{self.label()}: commit {sha} was not sent by the server")
            self._commits[sha] = repo
        return self._commits[sha]

    def tree(self, sha: str) -> TreeListing:
        """Every file at commit *sha* with its blob id, looked up folder by folder in the fetched trees: a path
        costs the folders on its way, not the repository (a full walk only when iterated)."""
        if sha not in self._listings:
            repo = self._commit_repo(sha)
            self._listings[sha] = TreeListing(repo.object_store, repo.object_store[sha.encode()].tree,
                                              f"{self.label()} at commit {sha}")
        return self._listings[sha]

    def read_many(self, items: Iterable[tuple[str, str, str | None]]) -> dict[str, bytes]:
        """Read several files at once: [(path, sha, blob id)] -> {path: bytes}, one fetch for the missing blobs."""
        items = list(items)
        result: dict[str, bytes] = {}
        missing: dict[str, str] = {}
        for path, sha, blob in items:
            if not blob:
                blob = self.tree(sha).get(path)
                if blob is None:
                    continue  # no such file at that commit: left out of the answer
            # a commit already fetched whole (no filter on the server) holds the file; otherwise fetch by
            # blob id, without fetching the commit at all (a registered closure needs no listing)
            store = self._commits[sha].object_store if sha in self._commits else None
            if store is not None and blob.encode() in store:
                result[path] = store[blob.encode()].as_raw_string()
            else:
                missing[path] = blob
        if missing:
            names = ", ".join(sorted(missing))
            fetched = self._fetch_or_missing(sorted(set(missing.values())), names, PathNotFoundError)
            for path, blob in missing.items():
                if blob.encode() in fetched.object_store:  # else left out: the loader says what is missing
                    result[path] = fetched.object_store[blob.encode()].as_raw_string()
        return result

    def read(self, path: str, sha: str, blob_id: str | None = None) -> bytes:
        found = self.read_many([(path, sha, blob_id)])
        if path not in found:
            raise PathNotFoundError(f"{self.label()}: {path} does not exist at commit {sha}")
        return found[path]


class TreeListing(Mapping[str, str | None]):
    """``{path: blob id}`` of a commit, read from its tree objects on demand (each folder's tree once)."""

    def __init__(self, store: Any, root: bytes, where: str) -> None:
        self._store, self._where = store, where
        self._folders: dict[str, dict[str, tuple[int, bytes]] | None] = {}
        self._root = root
        self._all: dict[str, str | None] | None = None

    def _entries(self, folder: str) -> dict[str, tuple[int, bytes]] | None:
        """The entries of *folder* (``""``: the root), None when there is no such folder."""
        if folder not in self._folders:
            if folder == "":
                tree_id: bytes | None = self._root
            else:
                parent, _, name = folder.rpartition("/")
                above = self._entries(parent)
                entry = above.get(name) if above else None
                tree_id = entry[1] if entry and entry[0] & 0o170000 == 0o040000 else None
            self._folders[folder] = None if tree_id is None else self._read(tree_id, folder)
        return self._folders[folder]

    def _read(self, tree_id: bytes, folder: str) -> dict[str, tuple[int, bytes]]:
        try:
            tree = self._store[tree_id]
        except KeyError:
            raise IntegrityError(f"{self._where}: the server's answer lacks the tree of {folder or 'the root'}/ "
                                 f"({tree_id.decode()}); it sent an incomplete pack") from None
        return {e.path.decode("utf-8", "surrogateescape"): (e.mode, e.sha) for e in tree.items()}

    def __getitem__(self, path: str) -> str | None:
        folder, _, name = path.rpartition("/")
        entries = self._entries(folder)
        entry = entries.get(name) if entries else None
        if entry is None or entry[0] & 0o170000 not in (0o100000, 0o120000):
            raise KeyError(path)
        return entry[1].decode()

    def _walk(self) -> dict[str, str | None]:
        if self._all is None:
            found: dict[str, str | None] = {}
            pending = [""]
            while pending:
                folder = pending.pop()
                for name, (mode, sha) in (self._entries(folder) or {}).items():
                    rel = f"{folder}/{name}" if folder else name
                    if mode & 0o170000 == 0o040000:
                        pending.append(rel)
                    elif mode & 0o170000 in (0o100000, 0o120000):
                        found[rel] = sha.decode()
            self._all = found
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._walk())

    def __len__(self) -> int:
        return len(self._walk())


class _Progress:
    """The server's progress lines of a fetch (``Counting objects: 40% (...)``), logged at INFO at most every
    ``every`` seconds and once when a step is done: a long fetch (a server without ``filter`` sends the
    whole commit) shows that it moves on (``gitflows -v``)."""

    def __init__(self, where: str, every: float = 2.0) -> None:
        import time

        self.where, self.every, self._clock = where, every, time.monotonic
        self._last, self._buffer = 0.0, b""

    def __call__(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.replace(b"\r", b"\n").split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            now = self._clock()
            if line.endswith("done.") or now - self._last >= self.every:
                self._last = now
                log.info("%s: server: %s", self.where, line)


def _raise_no_filter(*args: Any, **kwargs: Any) -> None:
    raise _NoFilter()


def repo_path(url: str) -> str:
    return posixpath.basename(urlsplit(url).path or url)
