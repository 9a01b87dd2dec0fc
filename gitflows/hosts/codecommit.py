"""AWS CodeCommit through boto3.

CodeCommit has no recursive tree call, so the listing is lazy: the first question about a path
loads that one folder (``GetFolder``, which gives blob ids), and only folders the closure looks
into are ever listed. Files are read by blob id (``GetBlob``). Requests per cold load of a
pinned SHA: one ``GetFolder`` per folder the closure touches plus one ``GetBlob`` per file; the
default branch costs two more (``GetRepository``, ``GetBranch``), a branch one (``GetBranch``); a
tag or a reference such as ``refs/heads/main`` is resolved by ``GetFolder`` of the root (after a
``GetBranch`` miss for a bare name), whose listing the load then reuses.
botocore's own retries are off; :mod:`gitflows.remote` retries throttling and server errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from gitflows.aws import AWSCredentials, split_client_options, translated
from gitflows.aws import client as aws_client
from gitflows.errors import (
    ConfigurationError,
    NotFoundError,
    PathNotFoundError,
    RefNotFoundError,
    RepoNotFoundError,
)
from gitflows.hosts import OneByOne
from gitflows.hosts.listing import Folder, FolderListing
from gitflows.remote import RetryPolicy, call

T = TypeVar("T")
NOT_FOUND: dict[str, type[NotFoundError]] = {
    "RepositoryDoesNotExistException": RepoNotFoundError,
    "BranchDoesNotExistException": RefNotFoundError,
    "CommitDoesNotExistException": RefNotFoundError,
    "CommitIdDoesNotExistException": RefNotFoundError,
    "InvalidCommitIdException": RefNotFoundError,
    "InvalidCommitException": RefNotFoundError,
    "FileDoesNotExistException": PathNotFoundError,
    "FolderDoesNotExistException": PathNotFoundError,
    "BlobIdDoesNotExistException": PathNotFoundError,
}


class CodeCommitHost(OneByOne):
    kind = "codecommit"
    concurrent_reads = 8  # boto3 clients are thread-safe

    def __init__(self, repo: str, client_options: Mapping[str, Any] | None = None,
                 policy: RetryPolicy | None = None, client: Any = None,
                 credentials: AWSCredentials | None = None) -> None:
        if not repo or "/" in repo:
            raise ConfigurationError(f"CodeCommit repo must be a repository name (letters, digits, '.', '_', '-'), "
                                     f"got {repo!r}")
        self.repo = repo
        self.options, given = split_client_options(client_options, "CodeCommit")
        self.credentials = credentials if credentials else given
        self._policy = policy
        self._client = client
        self._client_lock = threading.Lock()
        self._folders: dict[tuple[str, str], tuple[dict[str, str], set[str]]] = {}

    def label(self) -> str:
        where = self.options.get("endpoint_url") or self.options.get("region_name") or "default region"
        return f"CodeCommit {self.repo} ({where})"

    def cache_key(self) -> tuple[str, ...]:
        where = str(self.options.get("endpoint_url") or self.options.get("region_name") or "default")
        return ("codecommit", where.replace("://", "-").replace("/", "-").strip("-") or "default", self.repo)

    def client(self) -> Any:
        with self._client_lock:  # read_many's threads may ask first: one client, credentials resolved once
            if self._client is None:
                self._client = aws_client("codecommit", self.options, "aws", self.credentials)
        return self._client

    def _call(self, fn: Callable[[], T], action: str, not_found: type[NotFoundError]) -> T:
        def missing(code: str, status: int, message: str) -> Exception | None:
            cls = NOT_FOUND.get(code)
            return cls(f"{self.label()}: {action}: not found ({message})") if cls else None

        def wrapped() -> T:
            return translated(fn, missing)

        return call(wrapped, where=self.label(), action=action, not_found=not_found,
                    auth_hint="check the AWS credentials (client_options, the AWS_CREDENTIALS secret, environment, "
                              "profile or role)", policy=self._policy)

    def resolve(self, ref: str | None) -> str:
        """A branch (``GetBranch``), else any other commit specifier CodeCommit takes — a tag, a commit id,
        ``refs/heads/main`` — through ``GetFolder`` of the root, whose answer names the commit."""
        client = self.client()
        if ref is None:
            meta = self._call(lambda: client.get_repository(repositoryName=self.repo)["repositoryMetadata"],
                              "looking up the default branch", RepoNotFoundError)
            ref = meta.get("defaultBranch")
            if not ref:
                raise RefNotFoundError(f"{self.label()}: the repository has no default branch (empty repository?)")
        if not ref.startswith("refs/"):
            try:
                return str(self._call(lambda: client.get_branch(repositoryName=self.repo,
                                                                branchName=ref)["branch"]["commitId"],
                                      f"resolving branch {ref!r}", RefNotFoundError))
            except RefNotFoundError:
                pass
        try:
            answer = self._call(lambda: client.get_folder(repositoryName=self.repo, commitSpecifier=ref, folderPath="/"),
                                f"resolving {ref!r}", RefNotFoundError)
        except (RefNotFoundError, PathNotFoundError):
            raise RefNotFoundError(f"{self.label()}: no branch, tag or commit {ref!r} (CodeCommit takes a branch name, "
                                   "a tag, a full commit id or a reference such as refs/heads/main)") from None
        sha = str(answer["commitId"])
        self._folders[(sha, "")] = _listing(answer)
        return sha

    def tree(self, sha: str) -> FolderListing:
        """The commit's files, listed folder by folder (``GetFolder``) as the loader asks."""
        return FolderListing(self._list_folder, sha, self.label())

    def _list_folder(self, sha: str, folder: str) -> Folder | None:
        """The files directly in *folder* at *sha* with their blob ids, and its sub-folders' paths."""
        if (sha, folder) in self._folders:
            files, subfolders = self._folders.pop((sha, folder))
            return Folder(dict(files), subfolders)
        client = self.client()
        try:
            answer = self._call(lambda: client.get_folder(repositoryName=self.repo, commitSpecifier=sha,
                                                          folderPath="/" + folder),
                                f"listing folder /{folder} at commit {sha}", PathNotFoundError)
        except PathNotFoundError:
            return None
        files, subfolders = _listing(answer)
        return Folder(dict(files), subfolders)

    def read(self, path: str, sha: str, blob_id: str | None = None) -> bytes:
        client = self.client()
        action = f"reading {path} at commit {sha}"
        if blob_id:
            return bytes(self._call(lambda: client.get_blob(repositoryName=self.repo, blobId=blob_id)["content"],
                                    action, PathNotFoundError))
        return bytes(self._call(lambda: client.get_file(repositoryName=self.repo, commitSpecifier=sha,
                                                        filePath=path)["fileContent"], action, PathNotFoundError))


def _listing(answer: dict[str, Any]) -> tuple[dict[str, str], set[str]]:
    """(files with blob ids, sub-folder paths) from a ``GetFolder`` answer."""
    files = {f["absolutePath"].lstrip("/"): f["blobId"] for f in answer.get("files", [])}
    return files, {d["absolutePath"].strip("/") for d in answer.get("subFolders", [])}
