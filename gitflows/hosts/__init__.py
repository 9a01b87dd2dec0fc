"""Hosts: where flow scripts live in a repository. One module per host, one protocol.

A host is bound to one repository. It resolves refs to commit SHAs, lists a commit's files (with
git blob ids where the host gives them) and reads files at a commit. Everything else — closures,
verification, caching, importing — is the shared loader's job (:mod:`gitflows.loader`).

The contract:

* **Hosts never verify against a record.** They return what the server sent; the loader checks
  every file against a blob id (the registered record, or the listing) before anything is used.
  A host that receives a blob id with the content (GraphQL) refuses an answer whose bytes do not
  hash to it: that is the server contradicting itself, not a question of trust.
* **``tree`` may be lazy.** API hosts return a :class:`~gitflows.hosts.listing.FolderListing` that
  lists a folder only when the loader asks about a path in it, so a cold load costs the folders
  import resolution looks into, not the repository's size. Hosts that ``probe`` (GraphQL) are not
  listed at all: every candidate path of a level of imports is read in one request.
* **Errors** are :mod:`gitflows.errors` types naming the host and repository:
  ``RepoNotFoundError`` (no such repository, or no access), ``RefNotFoundError`` (no such
  branch, tag or commit), ``PathNotFoundError`` (no such file at that commit).
* **Threads**: a host instance is used by one thread at a time; create one per thread. ``read_many``
  may read on threads of its own (:attr:`OneByOne.concurrent_reads`), and returns only when they are done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from gitflows.errors import PathNotFoundError

A = TypeVar("A")
R = TypeVar("R")


class Host(Protocol):
    #: short name, first segment of cache keys ("github", "gitlab", ...)
    kind: str
    #: requests the host may have in flight at once (its client allows it); the loader lists the folders
    #: on the script's way while it reads the script when more than 1
    concurrent_reads: int
    @property
    def probes(self) -> bool:
        """True when the host reads many paths in one request, missing ones simply absent (GraphQL): the
        loader then resolves each level of imports by reading every candidate path at once instead of
        listing folders, so a cold load costs one request per level whatever the folders hold."""
        ...

    def label(self) -> str:
        """Names the host and repository in messages, e.g. ``GitHub acme/flows (https://api.github.com)``."""
        ...

    def cache_key(self) -> tuple[str, ...]:
        """Segments that identify this repository on this server in the cache."""
        ...

    def resolve(self, ref: str | None) -> str:
        """The full commit SHA of a branch, tag or (short) SHA; ``None`` means the default branch."""
        ...

    def check_repo(self) -> None:
        """Raise ``RepoNotFoundError`` when the repository does not exist (or cannot be seen). The loader
        calls it once, after a ``RefNotFoundError``: many APIs answer a bare 404 for a missing repository
        and a missing ref alike."""
        ...

    def tree(self, sha: str) -> Mapping[str, str | None] | None:
        """Every file path at commit *sha* mapped to its git blob id (None where the host omits it),
        possibly filled lazily; None when the host cannot list at all (the loader then reads paths)."""
        ...

    def read(self, path: str, sha: str, blob_id: str | None = None) -> bytes:
        """The bytes of *path* at commit *sha* (the host may fetch by *blob_id* when given)."""
        ...

    def read_many(self, items: Iterable[tuple[str, str, str | None]]) -> dict[str, bytes]:
        """Several files, ``[(path, sha, blob id or None)] -> {path: bytes}``, in as few round trips as
        the host can (:class:`OneByOne` reads them in turn). A file that does not exist is left out of
        the answer (the loader decides what that means). A host may use the round trip to list the
        folders on the files' way too (:meth:`FolderListing.prime`)."""
        ...


class OneByOne:
    """The shared default ``read_many`` for hosts that cannot fetch several files in one request."""

    #: reads ``read_many`` runs at once. 1 reads in turn; a host whose client allows concurrent requests
    #: (a ``requests`` session called directly, a boto3 client) sets more: a level of imports then costs one
    #: round trip of waiting instead of one per file (the request count is the same).
    concurrent_reads = 1

    @property
    def probes(self) -> bool:
        return False

    def check_repo(self) -> None:
        """Nothing to do where errors already say which is missing (the default)."""
        return None

    def read(self, path: str, sha: str, blob_id: str | None = None) -> bytes:
        raise NotImplementedError

    def read_many(self, items: Iterable[tuple[str, str, str | None]]) -> dict[str, bytes]:
        return read_each(self.read, list(items), self.concurrent_reads)


def read_each(read: Callable[[str, str, str | None], bytes], items: Sequence[tuple[str, str, str | None]],
              workers: int = 1) -> dict[str, bytes]:
    """``{path: read(path, sha, blob id)}`` for *items*, a file that does not exist (``PathNotFoundError``) left
    out; up to *workers* reads at once (:func:`concurrently`)."""
    def one(item: tuple[str, str, str | None]) -> bytes | None:
        try:
            return read(*item)
        except PathNotFoundError:
            return None

    results = concurrently(one, items, workers)
    return {item[0]: data for item, data in zip(items, results, strict=True) if data is not None}


def concurrently(fn: Callable[[A], R], items: Sequence[A], workers: int = 1) -> list[R]:
    """``[fn(item) for item in items]``, up to *workers* at once on threads of their own (in turn when 1).
    A failure is raised once every call has ended (the first, in the order of *items*): nothing is left
    running behind the caller."""
    if workers <= 1 or len(items) < 2:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    results: list[R] = []
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="gitflows-read") as pool:
        for future in [pool.submit(fn, item) for item in items]:
            try:
                results.append(future.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the other calls
                failure = failure or exc
    if failure is not None:
        raise failure
    return results
