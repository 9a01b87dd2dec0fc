"""Bitbucket Server / Data Center (REST 1.0 and git smart HTTP) and Bitbucket Cloud (REST 2.0).

**Server reads over git** where it can: the repository's clone URL (``<host>/scm/<project>/<repo>.git``),
the same token as a bearer header (what Bitbucket documents for HTTP access tokens), on the REST
client's connections. Protocol v2 and partial clones (Bitbucket Data Center 7.13+ with git 2.18+, on by
default) make a cold load of a pinned SHA three requests whatever the size of the repository: the
commit's trees (``filter blob:none``, every path with its blob id), the script's blob, then one request
per level of imports; a registered closure is one request (blobs by id, no filter needed). Refs are
still resolved over REST. Any git failure — no ``filter``, protocol v0, git over HTTP turned off, a
token git refuses, a broken or cut-off answer — costs that one request: from then on this host reads
over REST, which also gives the answer of record for a missing repository, ref or path.

**Over REST**, Server's folder listing gives blob ids (``contentId``) and files are verified against
it; Cloud's does not, so its files are verified against the registered record (``build()`` records
each file's git blob id). Refs are found by listing branches, then tags, following every page
(Prefect 1 looked at the first page only). A cold load costs one folder listing per folder import
resolution looks into (the first page of each), plus the reads. Server reads several files in one
request (``archive?path=...&path=...``, a tar of just those paths, Bitbucket Server 5.1+); Cloud has
no such endpoint (nor partial clones) and reads one file per request. A branch costs one listing
request per page of matching branches.
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from gitflows.errors import (
    AccessDeniedError,
    ConfigurationError,
    LibraryMissingError,
    NotFoundError,
    PathNotFoundError,
    RefNotFoundError,
    RepoNotFoundError,
)
from gitflows.hosts import OneByOne, read_each
from gitflows.hosts.listing import Folder, FolderListing
from gitflows.redact import get_logger
from gitflows.remote import HTTPFailure, RetryPolicy, call

log = get_logger(__name__)

T = TypeVar("T")
CLOUD_URL = "https://api.bitbucket.org"
GIT_TIMEOUT = 30.0  # seconds a git request to Bitbucket Server may stall before REST is asked instead
MAX_PAGES = 1000


def _message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "")[:200]
    if isinstance(body, dict):
        if isinstance(body.get("errors"), list) and body["errors"]:  # Server
            return "; ".join(str(e.get("message", "")) for e in body["errors"] if isinstance(e, dict))
        if isinstance(body.get("error"), dict):  # Cloud
            return str(body["error"].get("message", ""))
        return str(body.get("message", ""))
    return ""


class _BitbucketBase(OneByOne):
    """HTTP plumbing shared by the Server and Cloud hosts. The library's own Retry-After sleeping is off
    (it would sleep for as long as the server says): rate limits go through gitflows.remote."""

    kind = "bitbucket"
    concurrent_reads = 8  # atlassian-python-api calls its requests session directly: concurrent reads are safe
    url: str
    repo_label: str

    def __init__(self, policy: RetryPolicy | None, auth_hint: str) -> None:
        self._policy = policy
        self._auth_hint = auth_hint
        self._client: Any = None
        self._client_lock = threading.Lock()

    def label(self) -> str:
        return f"Bitbucket {self.repo_label} ({self.url})"

    def _make_client(self) -> Any:
        raise NotImplementedError

    def _api(self) -> Any:
        with self._client_lock:  # read_many's threads may ask first: one client, the secret resolved once
            return self._make_client_once()

    def _make_client_once(self) -> Any:
        if self._client is None:
            try:
                import atlassian  # noqa: F401
            except ImportError:
                raise LibraryMissingError("the Bitbucket storage needs atlassian-python-api: "
                                          "pip install -e '.[bitbucket]' in the gitflows checkout") from None
            self._client = self._make_client()
        return self._client

    def _get(self, path: str, action: str, not_found: type[NotFoundError], params: dict[str, Any] | None = None,
             raw: bool = False, absolute: bool = False, hint: str = "") -> Any:
        """GET *path* (relative to the API URL, or an absolute next-page URL); a trailing slash is kept."""
        import requests

        def once() -> Any:
            try:
                response = self._api().get(path, params=params, advanced_mode=True, absolute=absolute,
                                           trailing=path.endswith("/"))
            except requests.RequestException as exc:
                raise HTTPFailure(None, {}, type(exc).__name__) from None
            if response.status_code >= 400:
                raise HTTPFailure(response.status_code, dict(response.headers), _message(response))
            if raw:
                return response.content
            try:
                return response.json()
            except ValueError:
                raise HTTPFailure(502, {}, "response is not JSON") from None

        return call(once, where=self.label(), action=action, not_found=not_found, not_found_hint=hint,
                    auth_hint=self._auth_hint, policy=self._policy)

    # Server and Cloud differ in paths and field names only; these say how.
    def _default_head(self) -> str:
        raise NotImplementedError

    def _ref_query(self, kind: str, ref: str) -> tuple[str, dict[str, Any]]:
        """(path, params) listing the branches or tags (*kind*) whose name matches *ref*."""
        raise NotImplementedError

    def _ref_sha(self, item: dict[str, Any], ref: str) -> str | None:
        """The commit of a listed branch/tag when it is exactly *ref*."""
        raise NotImplementedError

    def _commit(self, ref: str) -> tuple[str, str]:
        """(path of the commit endpoint for *ref*, name of the field holding its full SHA)."""
        raise NotImplementedError

    def _pages(self, path: str, action: str, params: dict[str, Any], not_found: type[NotFoundError]) -> Iterator[Any]:
        raise NotImplementedError

    def check_repo(self) -> None:
        """After a 404, tell 'no such repository (or no access)' apart from 'no such ref/path'."""
        self._repository_info()

    def _repository_info(self) -> Any:
        raise NotImplementedError

    def _list_folder(self, sha: str, folder: str) -> Folder | None:
        raise NotImplementedError

    def tree(self, sha: str) -> Mapping[str, str | None]:
        """The commit's files, listed folder by folder as the loader asks (a missing root: no such commit)."""
        return FolderListing(self._listing_or_missing, sha, self.label())

    def _listing_or_missing(self, sha: str, folder: str) -> Folder | None:
        try:
            return self._list_folder(sha, folder)
        except PathNotFoundError:
            return None

    def resolve(self, ref: str | None) -> str:
        """Branches, then tags (every page), then the commit endpoint; None is the default branch."""
        if ref is None:
            return self._default_head()
        for kind in ("branches", "tags"):
            path, params = self._ref_query(kind, ref)
            for item in self._pages(path, f"listing {kind} matching {ref!r}", params, RepoNotFoundError):
                sha = self._ref_sha(item, ref)
                if sha:
                    return sha
        path, field = self._commit(ref)
        commit = self._get(path, f"resolving ref {ref!r}", RefNotFoundError, hint=f"no branch, tag or commit {ref!r}")
        return str(commit[field])


class BitbucketServerHost(_BitbucketBase):
    def __init__(self, project: str, repo: str, url: str, token: Callable[[], str | None],
                 secret_name: str | None = None, policy: RetryPolicy | None = None) -> None:
        if not project or not repo:
            raise ConfigurationError("Bitbucket Server needs project= and repo=")
        self.project, self.repo, self.url = project, repo, url.rstrip("/")
        self.repo_label = f"{project}/{repo}"
        self._token = token
        hint = f"check the token in secret {secret_name}" if secret_name else "no token was configured"
        super().__init__(policy, hint)
        self._archive_works = True  # until a server without the archive endpoint (before 5.1) proves otherwise
        self._git: Any = None  # the repository over git smart HTTP; False once it proved unusable here

    # -- git smart HTTP: the commit's trees and the closure's blobs in a fixed number of requests ----------
    def _git_host(self) -> Any:
        """The same repository at ``<host>/scm/<project>/<repo>.git`` (the clone URL), same token as a bearer
        header (as Bitbucket documents for HTTP access tokens), requests on the REST client's connections;
        None once git proved unusable here (or dulwich is not installed)."""
        if self._git is None:
            try:
                import dulwich  # noqa: F401
            except ImportError:
                self._git = False
                return None
            from gitflows.hosts.git import Credentials, GitHost
            from gitflows.hosts.smart_http import RequestsPool

            def credentials() -> Credentials | None:
                token = self._token()
                return Credentials(bearer=token) if token else None

            url = f"{self.url}/scm/{quote(self.project.lower(), safe='~')}/{quote(self.repo.lower(), safe='')}.git"
            # one attempt, bounded: git is the fast path, REST (with its own retries) the one that must answer
            policy = RetryPolicy(attempts=1, max_rate_limit_wait=0)
            self._git = GitHost(url, credentials, policy=policy, auth_hint=self._auth_hint,
                                pool=RequestsPool(self._api().session, timeout=GIT_TIMEOUT), fallback=False)
        return self._git or None

    def _over_git(self, what: str, use: Callable[[Any], T]) -> T | None:
        """*use(git host)*, or None when git cannot answer here: the REST API then answers instead, from now on.

        Any failure sends the request to REST — no ``filter`` or protocol v2 (Bitbucket before 7.13 / 5.13,
        or partial clones turned off), git over HTTP disabled, a token git refuses, a broken answer, a 5xx,
        a rate limit, no answer within ``GIT_TIMEOUT`` — at once (git is tried once, not retried), and REST
        gives the answer of record (a missing repository, ref or path is its to report)."""
        from gitflows.errors import GitflowsError
        from gitflows.hosts.git import GitUnavailable

        git = self._git_host() if self._git is not False else None
        if git is None:
            return None
        try:
            return use(git)
        except (GitUnavailable, GitflowsError) as exc:
            log.info("%s: %s over git smart HTTP failed (%s); using the REST API from now on", self.label(), what,
                     type(exc).__name__)
            self._git = False
            return None

    def cache_key(self) -> tuple[str, ...]:
        return ("bitbucket-server", urlsplit(self.url).netloc or "bitbucket", self.project, self.repo)

    def _make_client(self) -> Any:
        from atlassian.rest_client import AtlassianRestAPI

        return AtlassianRestAPI(url=self.url, token=self._token(), timeout=30, retry_with_header=False)

    @property
    def _base(self) -> str:
        return f"rest/api/1.0/projects/{quote(self.project, safe='')}/repos/{quote(self.repo, safe='')}"

    def _pages(self, path: str, action: str, params: dict[str, Any], not_found: type[NotFoundError]) -> Iterator[Any]:
        start = 0
        for _ in range(MAX_PAGES):
            page = self._get(path, action, not_found, params={**params, "start": start, "limit": 1000})
            yield from page.get("values", [])
            if page.get("isLastPage", True) or page.get("nextPageStart") is None:
                return
            start = page["nextPageStart"]

    def _repository_info(self) -> Any:
        return self._get(self._base, "looking up the repository", RepoNotFoundError,
                  hint="the project or repository does not exist, or the token cannot see it")

    def _default_head(self) -> str:
        branch = self._get(self._base + "/branches/default", "looking up the default branch", RepoNotFoundError,
                           hint="the project or repository does not exist, or the token cannot see it")
        return str(branch["latestCommit"])

    def _ref_query(self, kind: str, ref: str) -> tuple[str, dict[str, Any]]:
        return f"{self._base}/{kind}", {"filterText": ref}

    def _ref_sha(self, item: dict[str, Any], ref: str) -> str | None:
        if item.get("displayId") == ref or item.get("id") == ref:
            return str(item.get("latestCommit") or item.get("hash"))
        return None

    def _commit(self, ref: str) -> tuple[str, str]:
        return f"{self._base}/commits/{quote(ref, safe='')}", "id"

    def _list_folder(self, sha: str, folder: str) -> Folder | None:
        """``browse/<folder>?at=<sha>``: the first page of the folder's direct children, with blob ids
        (``contentId``). A folder with more is marked incomplete: paths in it are read directly instead
        of paging through it, so a big folder costs a few reads, not its size."""
        path = f"{self._base}/browse/{quote(folder)}" if folder else f"{self._base}/browse"
        page = self._get(path, f"listing {folder or 'the root'}/ at commit {sha}", PathNotFoundError,
                         params={"at": sha, "start": 0, "limit": 1000})
        children = page.get("children")
        if not isinstance(children, dict):
            return None  # a file, not a folder
        listed = Folder(complete=bool(children.get("isLastPage", True)))
        for child in children.get("values", []):
            name = "/".join(child.get("path", {}).get("components", []))
            rel = f"{folder}/{name}" if folder else name
            if child.get("type") == "DIRECTORY":
                listed.folders.add(rel)
            elif child.get("type") == "FILE":
                listed.files[rel] = child.get("contentId")
        return listed

    def _raw(self, path: str, sha: str) -> bytes:
        data: bytes = self._get(f"{self._base}/raw/{quote(path)}", f"reading {path} at commit {sha}",
                                PathNotFoundError, params={"at": sha}, raw=True)
        return data

    def _one_by_one(self, items: Iterable[tuple[str, str, str | None]]) -> dict[str, bytes]:
        return read_each(lambda path, sha, _: self._raw(path, sha), list(items), self.concurrent_reads)

    def tree(self, sha: str) -> Mapping[str, str | None]:
        """Over git: the commit's trees in one request (``deepen 1``, ``filter blob:none``), every path with its
        blob id whatever the size of the repository; else folder by folder over REST."""
        listing = self._over_git(f"listing commit {sha}", lambda git: git.tree(sha))
        return listing if listing is not None else super().tree(sha)

    def read_many(self, items: Iterable[tuple[str, str, str | None]]) -> dict[str, bytes]:
        """Over git, one request for all of them (blob ids not given are looked up in the commit's trees, which
        one request fetches); whatever git did not deliver (or everything, where git is unusable) over REST."""
        wanted = list(items)
        found: dict[str, bytes] = {}
        if wanted:
            found = self._over_git(f"reading {len(wanted)} files", lambda git: git.read_many(wanted)) or {}
        rest = [item for item in wanted if item[0] not in found]
        if rest:
            found.update(self._rest_read_many(rest))
        return found

    def read(self, path: str, sha: str, blob_id: str | None = None) -> bytes:
        found = self._over_git(f"reading {path}", lambda git: git.read_many([(path, sha, blob_id)])) or {}
        return found[path] if path in found else self._raw(path, sha)

    def _rest_read_many(self, items: Iterable[tuple[str, str, str | None]]) -> dict[str, bytes]:
        """Two files or more at one commit: one ``archive`` request (a tar of just those paths).

        The loader asks only for paths a listing or the registered record says exist, and verifies every
        file against its blob id, so the archive is trusted for nothing but transport. Whatever the
        archive does not hold — a 404 (a server older than 5.1, which has no archive endpoint; or a path
        git archive did not match), an unreadable tar, a path left out — is read one by one, so the
        answer is the same as :class:`OneByOne`'s. When one-by-one reads then find every file the
        archive 404'd on, the server has no archive endpoint: this host stops asking."""
        wanted = list(items)
        shas = {sha for _, sha, _ in wanted}
        if len(wanted) < 2 or len(shas) != 1 or not self._archive_works:
            return self._one_by_one(wanted)
        sha = shas.pop()
        paths = list(dict.fromkeys(path for path, _, _ in wanted))
        found: dict[str, bytes] = {}
        try:
            data = self._get(f"{self._base}/archive", f"reading {len(paths)} files at commit {sha} as one archive",
                             PathNotFoundError, params={"at": sha, "format": "tar", "path": paths}, raw=True)
            found = _untar(data, set(paths))
        except (PathNotFoundError, AccessDeniedError) as refused:
            # 404: no archive endpoint (before 5.1) or a path git archive did not match; 403: archives
            # refused (a proxy or a plugin) while files may still be read one by one
            rest = self._one_by_one(wanted)
            if len(rest) == len(paths):
                log.info("%s: the server refuses archives (%s); reading files one by one", self.label(),
                         "HTTP 403" if isinstance(refused, AccessDeniedError) else "no archive endpoint: "
                         "Bitbucket Server before 5.1")
                self._archive_works = False
            return rest
        missing = [item for item in wanted if item[0] not in found]
        if missing:
            log.debug("%s: the archive at %s lacked %s; reading them one by one", self.label(), sha,
                      ", ".join(p for p, _, _ in missing))
            found.update(self._one_by_one(missing))
        return found


def _untar(data: bytes, wanted: set[str]) -> dict[str, bytes]:
    """The regular files among *wanted* in tar *data*, read in memory (nothing is extracted to disk; links,
    folders and paths not asked for are ignored). An unreadable archive holds nothing."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive:
                if member.isfile() and member.name in wanted and member.name not in found:
                    handle = archive.extractfile(member)
                    if handle is not None:
                        found[member.name] = handle.read()
    except (tarfile.TarError, EOFError, OSError):
        return found
    return found


class BitbucketCloudHost(_BitbucketBase):
    def __init__(self, workspace: str, repo: str, credentials: Callable[[], dict[str, str]],
                 url: str | None = None, auth_hint: str = "", policy: RetryPolicy | None = None) -> None:
        if not workspace or not repo:
            raise ConfigurationError("Bitbucket Cloud needs workspace= and repo=")
        self.workspace, self.repo = workspace, repo
        self.url = (url or CLOUD_URL).rstrip("/")
        self.repo_label = f"{workspace}/{repo}"
        self._credentials = credentials
        super().__init__(policy, auth_hint)

    def cache_key(self) -> tuple[str, ...]:
        return ("bitbucket-cloud", urlsplit(self.url).netloc or "bitbucket", self.workspace, self.repo)

    def _make_client(self) -> Any:
        from atlassian.rest_client import AtlassianRestAPI

        credentials: dict[str, Any] = dict(self._credentials())  # username/password or token, as the library takes them
        return AtlassianRestAPI(url=self.url, cloud=True, timeout=30, retry_with_header=False, **credentials)

    @property
    def _base(self) -> str:
        return f"2.0/repositories/{quote(self.workspace, safe='')}/{quote(self.repo, safe='')}"

    def _pages(self, path: str, action: str, params: dict[str, Any], not_found: type[NotFoundError]) -> Iterator[Any]:
        page = self._get(path, action, not_found, params=params)
        for _ in range(MAX_PAGES):
            yield from page.get("values", [])
            if not page.get("next"):
                return
            page = self._get(page["next"], action, not_found, absolute=True)

    def _repository_info(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get(self._base, "looking up the repository", RepoNotFoundError,
                                           hint="the repository does not exist, or the credentials cannot see it")
        return result

    def _default_head(self) -> str:
        name = str(self._repository_info().get("mainbranch", {}).get("name") or "")
        if not name:
            raise RefNotFoundError(f"{self.label()}: the repository has no main branch (empty repository?)")
        return self.resolve(name)

    def _ref_query(self, kind: str, ref: str) -> tuple[str, dict[str, Any]]:
        return f"{self._base}/refs/{kind}", {"q": f'name = "{ref}"', "pagelen": 100}

    def _ref_sha(self, item: dict[str, Any], ref: str) -> str | None:
        return str(item["target"]["hash"]) if item.get("name") == ref else None

    def _commit(self, ref: str) -> tuple[str, str]:
        return f"{self._base}/commit/{quote(ref, safe='')}", "hash"

    def _list_folder(self, sha: str, folder: str) -> Folder | None:
        """``src/<sha>/<folder>/``: the first page (100 entries) of the folder's direct entries (no blob ids);
        a folder with more is marked incomplete and paths in it are read directly."""
        path = f"{self._base}/src/{sha}/{quote(folder)}/" if folder else f"{self._base}/src/{sha}/"
        page = self._get(path, f"listing {folder or 'the root'}/ at commit {sha}", PathNotFoundError,
                         params={"pagelen": 100})
        listed = Folder(complete=not page.get("next"))
        for item in page.get("values", []):
            if item.get("type") == "commit_directory":
                listed.folders.add(str(item["path"]).rstrip("/"))
            elif item.get("type") == "commit_file":
                listed.files[str(item["path"])] = None
        return listed

    def read(self, path: str, sha: str, blob_id: str | None = None) -> bytes:
        data: bytes = self._get(f"{self._base}/src/{sha}/{quote(path)}", f"reading {path} at commit {sha}",
                                PathNotFoundError, raw=True)
        return data
