"""GitHub (and GitHub Enterprise) through PyGithub.

Requests per cold load of a pinned SHA: one ``contents/<folder>?ref=<sha>`` listing per folder
import resolution looks into (the root, the script's folder, the packages it imports from) plus
one ``git/blobs/<id>`` per file of the closure, whatever the size of the repository; a branch or
tag costs one more (``commits/<ref>``), the default branch two more (the repository, then its
branch). A registered closure costs only the blob reads.
PyGithub's own retries and its 0.25 s pause between requests are turned off: retries, backoff
and rate limits are handled by :mod:`gitflows.remote` for every host alike.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from gitflows.cache import git_blob_id
from gitflows.errors import (
    ConfigurationError,
    IntegrityError,
    LibraryMissingError,
    NotFoundError,
    PathNotFoundError,
    RefNotFoundError,
    RepoNotFoundError,
)
from gitflows.hosts import OneByOne
from gitflows.hosts.listing import Folder, FolderListing
from gitflows.redact import get_logger
from gitflows.remote import HTTPFailure, RetryPolicy, call

log = get_logger(__name__)
DEFAULT_BASE_URL = "https://api.github.com"
CONTENTS_LIMIT = 1000  # entries the contents API lists of one folder
GRAPHQL_BATCH = 100  # paths per GraphQL request
T = TypeVar("T")


class GitHubHost(OneByOne):
    kind = "github"

    def __init__(self, repo: str, token: Callable[[], str | None], base_url: str | None = None,
                 secret_name: str | None = None, policy: RetryPolicy | None = None) -> None:
        if not isinstance(repo, str) or repo.count("/") != 1 or not all(repo.split("/")):
            raise ConfigurationError(f"GitHub repo must be 'owner/name', got {repo!r}")
        self.repo = repo
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self._token = token
        self._secret_name = secret_name
        self._policy = policy
        self._repo_obj: Any = None
        self._client: Any = None
        self._graphql = True  # False once the server turned out to have no GraphQL API

    @property
    def probes(self) -> bool:
        """GitHub's GraphQL API reads many paths per request, but only with a token (it refuses anonymous
        callers): without one, folders are listed and files read over REST."""
        self._repository()
        return self._has_token and self._graphql

    def label(self) -> str:
        return f"GitHub {self.repo} ({self.base_url})"

    def cache_key(self) -> tuple[str, ...]:
        return ("github", urlsplit(self.base_url).netloc or "github", *self.repo.split("/"))

    # -- client -------------------------------------------------------------------
    def _repository(self) -> Any:
        if self._repo_obj is None:
            try:
                from github import Auth, Github
            except ImportError:
                raise LibraryMissingError("the GitHub storage needs PyGithub:"
                                          " pip install -e '.[github]' in the gitflows checkout") from None
            token = self._token()
            self._has_token = bool(token)
            client = Github(auth=Auth.Token(token) if token else None, base_url=self.base_url, retry=None,
                            seconds_between_requests=None, seconds_between_writes=None, timeout=30, per_page=100,
                            lazy=True)
            # lazy: objects are fetched when their data is read (``raw_data``), so the requests made are
            # exactly the ones below
            self._client = client
            self._repo_obj = client.get_repo(self.repo)
        return self._repo_obj

    def _call(self, fn: Callable[[], T], action: str, not_found: type[NotFoundError], hint: str = "",
              statuses: tuple[int, ...] = (404,)) -> T:
        import requests
        from github import GithubException

        def wrapped() -> T:
            try:
                return fn()
            except GithubException as exc:
                data = exc.data if isinstance(exc.data, dict) else {}
                raise HTTPFailure(exc.status, exc.headers or {}, str(data.get("message") or "")) from None
            except requests.RequestException as exc:
                raise HTTPFailure(None, {}, type(exc).__name__) from None

        auth_hint = (f"check the token in secret {self._secret_name}" if self._secret_name
                     else "no token was configured (access_token_secret)")
        return call(wrapped, where=self.label(), action=action, not_found=not_found, not_found_hint=hint,
                    auth_hint=auth_hint, policy=self._policy, not_found_statuses=statuses)

    def check_repo(self) -> None:
        """After a 404, tell 'no such repository (or no access)' apart from 'no such ref/path'."""
        self._call(lambda: self._repository().raw_data["full_name"], "looking up the repository", RepoNotFoundError,
                   "the repository does not exist or the token cannot see it")

    # -- Host protocol --------------------------------------------------------------
    def resolve(self, ref: str | None) -> str:
        repo = self._repository()
        if ref is None:
            ref = self._call(lambda: repo.raw_data["default_branch"], "looking up the default branch", RepoNotFoundError,
                             "the repository does not exist or the token cannot see it")
        return str(self._call(lambda: repo.get_commit(ref).raw_data["sha"], f"resolving ref {ref!r}",
                              RefNotFoundError, f"no branch, tag or commit {ref!r}", statuses=(404, 422)))

    def tree(self, sha: str) -> FolderListing:
        """The commit's files, listed folder by folder (``contents/<folder>?ref=<sha>``) as the loader asks."""
        return FolderListing(self._list_folder, sha, self.label())

    def _list_folder(self, sha: str, folder: str) -> Folder | None:
        repo = self._repository()
        try:
            found = self._call(lambda: repo.get_contents(folder, ref=sha), f"listing {folder or 'the root'}/ at "
                               f"commit {sha}", PathNotFoundError, statuses=(404, 422))
        except PathNotFoundError:
            return None
        if not isinstance(found, list):
            return None  # a file, not a folder
        listed = Folder(complete=len(found) < CONTENTS_LIMIT)  # GitHub lists at most 1,000 entries of a folder
        for entry in found:  # .type/.path/.sha come with the listing: reading them fetches nothing
            if entry.type == "dir":
                listed.folders.add(entry.path)
            elif entry.type in ("file", "symlink"):
                listed.files[entry.path] = entry.sha
        return listed

    def read(self, path: str, sha: str, blob_id: str | None = None) -> bytes:
        repo = self._repository()
        action = f"reading {path} at commit {sha}"
        if blob_id:
            blob = self._call(lambda: repo.get_git_blob(blob_id).raw_data, action, PathNotFoundError)
            return _decode(blob, self.label(), path)
        content = self._call(lambda: repo.get_contents(path, ref=sha), action, PathNotFoundError)
        if isinstance(content, list) or getattr(content, "type", "file") != "file":
            raise PathNotFoundError(f"{self.label()}: {path} at commit {sha} is a directory, not a file")
        raw = content.raw_data
        if raw.get("encoding") == "none" or (not raw.get("content") and raw.get("size")):
            big = self._call(lambda: repo.get_git_blob(raw["sha"]).raw_data, action, PathNotFoundError)
            return _decode(big, self.label(), path)
        return _decode(raw, self.label(), path)


    def read_many(self, items: Iterable[tuple[str, str, str | None]]) -> dict[str, bytes]:
        """With a token: up to 100 files per GraphQL request (``object(expression: "<sha>:<path>")``; a
        missing path is null). Binary, truncated or oddly encoded files are read over REST by blob id."""
        items = list(items)
        if not items or not self.probes:
            return super().read_many(items)
        found: dict[str, bytes] = {}
        try:
            for start in range(0, len(items), GRAPHQL_BATCH):
                found.update(self._graphql_read(items[start:start + GRAPHQL_BATCH]))
        except RepoNotFoundError:
            self.check_repo()  # the repository is there over REST: this server has no GraphQL (an old GHES)
            log.info("%s: no GraphQL API here; reading over REST", self.label())
            self._graphql = False
            return super().read_many(items)
        return found

    def _graphql_read(self, items: list[tuple[str, str, str | None]]) -> dict[str, bytes]:
        owner, name = self.repo.split("/")
        variables: dict[str, str] = {"owner": owner, "name": name}
        fields = []
        for i, (path, sha, _) in enumerate(items):
            variables[f"e{i}"] = f"{sha}:{path}"
            fields.append(f"f{i}: object(expression: $e{i}) {{ __typename ... on Blob {{ oid byteSize isBinary "
                          "isTruncated text }} }}")
        declared = ", ".join(f"${k}: String!" for k in variables)
        query = (f"query({declared}) {{ repository(owner: $owner, name: $name) {{ {' '.join(fields)} }} }}")
        what = ", ".join(path for path, _, _ in items[:3]) + (" ..." if len(items) > 3 else "")
        _, data = self._call(lambda: self._client.requester.graphql_query(query, variables),
                             f"reading {what} at commit {items[0][1]}", RepoNotFoundError,
                             "the repository does not exist or the token cannot see it")
        repository = (data.get("data") or {}).get("repository")
        if not isinstance(repository, dict):
            raise RepoNotFoundError(f"{self.label()}: the repository does not exist or the token cannot see it")
        found: dict[str, bytes] = {}
        for i, (path, sha, _) in enumerate(items):
            blob = repository.get(f"f{i}")
            if not isinstance(blob, dict) or blob.get("__typename") != "Blob":
                continue  # no such file (or a folder) at that commit
            text = blob.get("text")
            data_bytes = text.encode("utf-8") if isinstance(text, str) else None
            oid = str(blob.get("oid"))
            if data_bytes is None or blob.get("isBinary") or blob.get("isTruncated") or git_blob_id(data_bytes) != oid:
                data_bytes = self.read(path, sha, oid)  # binary, truncated or re-encoded: the exact bytes, over REST
                if git_blob_id(data_bytes) != oid:
                    raise IntegrityError(f"{self.label()}: {path} at commit {sha}: the server sent content with blob "
                                         f"id {git_blob_id(data_bytes)} as blob {oid}; refusing to use it")
            found[path] = data_bytes
        return found


def _decode(payload: dict[str, Any], label: str, path: str) -> bytes:
    if payload.get("encoding") not in ("base64", None):
        raise ConfigurationError(f"{label}: {path}: unexpected content encoding {payload.get('encoding')!r}")
    try:
        return base64.b64decode(payload.get("content") or "")
    except ValueError:
        raise ConfigurationError(f"{label}: {path}: content is not valid base64") from None
