"""GitLab (gitlab.com or self-managed) through python-gitlab.

Requests per cold load of a pinned SHA: one ``repository/tree?path=<folder>`` listing per folder
import resolution looks into (the root, the script's folder, the packages it imports from; one
request per 100 entries of that folder) plus one raw blob per file of the closure, whatever the
size of the repository; a branch or tag costs one more (``repository/commits/<ref>``),
the default branch two more (the project, then its branch). python-gitlab's own rate-limit
sleeping and transient retries are off: :mod:`gitflows.remote` handles both for every host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from gitflows.cache import git_blob_id
from gitflows.errors import (
    ConfigurationError,
    LibraryMissingError,
    NotFoundError,
    PathNotFoundError,
    RefNotFoundError,
    RepoNotFoundError,
)
from gitflows.hosts import OneByOne
from gitflows.hosts.listing import Folder, FolderListing
from gitflows.remote import HTTPFailure, RetryPolicy, call

DEFAULT_URL = "https://gitlab.com"
T = TypeVar("T")
NO_SLEEP = {"obey_rate_limit": False, "retry_transient_errors": False}
GRAPHQL_BATCH = 100  # paths per GraphQL request (a connection's page)


def base_url(host: str | None, default: str) -> str:
    """``host`` as a base URL: a full URL is kept, a bare host name gets ``https://``."""
    if not host:
        return default
    return (host if "://" in host else f"https://{host}").rstrip("/")


class GitLabHost(OneByOne):
    kind = "gitlab"

    def __init__(self, repo: str | int, token: Callable[[], str | None], host: str | None = None,
                 secret_name: str | None = None, policy: RetryPolicy | None = None) -> None:
        text = str(repo).strip("/")
        if not text or (not text.isdigit() and "/" not in text):
            raise ConfigurationError(f"GitLab repo must be 'namespace/project' or a numeric id, got {repo!r}")
        self.repo = text
        self.url = base_url(host, DEFAULT_URL)
        self._token = token
        self._secret_name = secret_name
        self._policy = policy
        self._project: Any = None
        self._client: Any = None
        self._last_headers: dict[str, str] = {}
        self._graphql = True  # False once the instance turned out to have no GraphQL API

    @property
    def probes(self) -> bool:
        """GitLab's GraphQL ``repository.blobs(paths:)`` reads many paths per request; it names projects by
        full path, so a project given by numeric id lists folders and reads over REST instead."""
        return not self.repo.isdigit() and self._graphql

    def label(self) -> str:
        return f"GitLab {self.repo} ({self.url})"

    def cache_key(self) -> tuple[str, ...]:
        return ("gitlab", urlsplit(self.url).netloc or "gitlab", *self.repo.split("/"))

    def _proj(self) -> Any:
        if self._project is None:
            try:
                import gitlab
                import requests
            except ImportError:
                raise LibraryMissingError("the GitLab storage needs python-gitlab:"
                                          " pip install -e '.[gitlab]' in the gitflows checkout") \
                    from None
            session = requests.Session()
            # python-gitlab's errors carry no headers; keep the last response's for rate limits
            session.hooks["response"].append(self._remember)
            self._client = gitlab.Gitlab(self.url, private_token=self._token(), timeout=30, per_page=100,
                                         retry_transient_errors=False, session=session, keep_base_url=True)
            self._project = self._client.projects.get(self._id(), lazy=True)
        return self._project

    def _id(self) -> int | str:
        return int(self.repo) if self.repo.isdigit() else self.repo

    def _full_project(self) -> Any:
        self._proj()
        return self._client.projects.get(self._id(), **NO_SLEEP)

    def _remember(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self._last_headers = dict(response.headers)

    def _call(self, fn: Callable[[], T], action: str, not_found: type[NotFoundError], hint: str = "") -> T:
        import requests
        from gitlab.exceptions import GitlabError

        def wrapped() -> T:
            try:
                return fn()
            except GitlabError as exc:
                message = exc.error_message
                if isinstance(message, bytes):
                    message = message.decode("utf-8", "replace")
                raise HTTPFailure(exc.response_code, self._last_headers, str(message)) from None
            except requests.RequestException as exc:
                raise HTTPFailure(None, {}, type(exc).__name__) from None

        auth_hint = (f"check the token in secret {self._secret_name}" if self._secret_name
                     else "no token was configured (access_token_secret)")
        return call(wrapped, where=self.label(), action=action, not_found=not_found, not_found_hint=hint,
                    auth_hint=auth_hint, policy=self._policy)

    def check_repo(self) -> None:
        """After a 404, tell 'no such project (or no access)' apart from 'no such ref/path'."""
        self._call(self._full_project, "looking up the project",
                   RepoNotFoundError, "the project does not exist or the token cannot see it")

    def resolve(self, ref: str | None) -> str:
        project = self._proj()
        if ref is None:
            full = self._call(self._full_project, "looking up the default branch", RepoNotFoundError,
                              "the project does not exist or the token cannot see it")
            ref = full.default_branch
            if not ref:
                raise RefNotFoundError(f"{self.label()}: the project has no default branch (empty repository?)")
        commit = self._call(lambda: project.commits.get(ref, **NO_SLEEP), f"resolving ref {ref!r}",
                            RefNotFoundError, f"no branch, tag or commit {ref!r}")
        return str(commit.id)

    def tree(self, sha: str) -> FolderListing:
        """The commit's files, listed folder by folder (``repository/tree?path=<folder>``) as the loader asks."""
        return FolderListing(self._list_folder, sha, self.label())

    def _list_folder(self, sha: str, folder: str) -> Folder | None:
        project = self._proj()
        options = {"path": folder} if folder else {}
        try:
            entries = self._call(lambda: project.repository_tree(ref=sha, recursive=False, get_all=False, per_page=100,
                                                                 **options, **NO_SLEEP),
                                 f"listing {folder or 'the root'}/ at commit {sha}", PathNotFoundError)
        except PathNotFoundError:
            return None
        listed = Folder(complete=len(entries) < 100)  # a bigger folder: paths in it are read directly
        for entry in entries:
            if entry.get("type") == "tree":
                listed.folders.add(entry["path"])
            elif entry.get("type") == "blob":
                listed.files[entry["path"]] = entry["id"]
        return listed

    def read_many(self, items: Iterable[tuple[str, str, str | None]]) -> dict[str, bytes]:
        """Up to 100 files per GraphQL request (``repository.blobs(ref:, paths:)``; missing paths are simply
        not in the answer). Binary or truncated files are read over REST by blob id."""
        items = list(items)
        if not items or not self.probes:
            return super().read_many(items)
        found: dict[str, bytes] = {}
        by_commit: dict[str, list[str]] = {}
        for path, sha, _ in items:
            by_commit.setdefault(sha, []).append(path)
        try:
            for sha, paths in by_commit.items():
                for start in range(0, len(paths), GRAPHQL_BATCH):
                    found.update(self._graphql_read(sha, paths[start:start + GRAPHQL_BATCH]))
        except RepoNotFoundError:
            self.check_repo()  # the project is there over REST: this instance has no GraphQL API
            self._graphql = False
            return super().read_many(items)
        return found

    def _graphql_read(self, sha: str, paths: list[str]) -> dict[str, bytes]:
        self._proj()
        query = ("query($project: ID!, $ref: String!, $paths: [String!]!) { project(fullPath: $project) { "
                 "repository { blobs(ref: $ref, paths: $paths, first: 100) { nodes { path oid size rawTextBlob } } } } }")
        variables = {"project": self.repo, "ref": sha, "paths": paths}
        what = ", ".join(paths[:3]) + (" ..." if len(paths) > 3 else "")
        answer = self._call(lambda: self._client.http_post(f"{self.url}/api/graphql",
                                                           post_data={"query": query, "variables": variables},
                                                           **NO_SLEEP),
                            f"reading {what} at commit {sha}", RepoNotFoundError,
                            "the project does not exist or the token cannot see it")
        project = (answer.get("data") or {}).get("project") if isinstance(answer, dict) else None
        if not isinstance(project, dict):
            raise RepoNotFoundError(f"{self.label()}: the project does not exist or the token cannot see it")
        nodes = (((project.get("repository") or {}).get("blobs") or {}).get("nodes")) or []  # size: a BigInt string
        found: dict[str, bytes] = {}
        for node in nodes:
            path = node.get("path") if isinstance(node, dict) else None
            if path not in paths:
                continue
            text = node.get("rawTextBlob")
            data = text.encode("utf-8") if isinstance(text, str) else None
            if data is None or str(len(data)) != str(node.get("size")) or git_blob_id(data) != node.get("oid"):
                data = self.read(path, sha, str(node.get("oid")))  # binary or truncated: the exact bytes, over REST
            found[path] = data
        return found

    def read(self, path: str, sha: str, blob_id: str | None = None) -> bytes:
        project = self._proj()
        action = f"reading {path} at commit {sha}"
        if blob_id:
            data = self._call(lambda: project.repository_raw_blob(blob_id, **NO_SLEEP), action, PathNotFoundError)
        else:
            data = self._call(lambda: project.files.raw(file_path=path, ref=sha, **NO_SLEEP), action,
                              PathNotFoundError)
        return bytes(data or b"")
