"""Hosts: where flow scripts live in a repository. One module per host, one protocol.

A host is bound to one repository. It resolves refs to commit SHAs, lists a
commit's files (with git blob ids where the host gives them), and reads a file
at a commit. Everything else — closures, verification, caching, importing —
is the shared loader's job (:mod:`gitflows.loader`).
"""

from __future__ import annotations

from typing import Protocol


class Host(Protocol):
    #: short name, first segment of cache keys ("github", "gitlab", ...)
    kind: str

    def label(self) -> str:
        """Names the host and repository in messages, e.g. ``GitHub acme/flows (https://api.github.com)``."""
        ...

    def cache_key(self) -> tuple[str, ...]:
        """Segments that identify this repository on this server in the cache."""
        ...

    def resolve(self, ref: str | None) -> str:
        """The full commit SHA of a branch, tag or (short) SHA; ``None`` means the default branch."""
        ...

    def tree(self, sha: str) -> dict[str, str | None] | None:
        """Every file path at commit *sha* mapped to its git blob id (None where the host omits it);
        None when the host cannot list a tree cheaply."""
        ...

    def read(self, path: str, sha: str, blob_id: str | None = None) -> bytes:
        """The bytes of *path* at commit *sha* (the host may fetch by *blob_id* when given)."""
        ...
