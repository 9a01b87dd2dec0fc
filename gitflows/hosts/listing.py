"""A commit's files, listed one folder at a time as the loader asks about paths.

What every host with a non-recursive folder listing shares (GitHub's contents API, GitLab's
``repository/tree?path=``, Bitbucket Server's ``browse``, Bitbucket Cloud's ``src``, CodeCommit's
``GetFolder``): the cost of a cold load is the folders import resolution looks into, never the
size of the repository.

A folder is listed only when its parent's listing says it exists (folders are walked from the
root), so probing an import candidate such as ``flows/pandas/__init__.py`` costs nothing once
``flows/`` is known to have no ``pandas`` folder. A host may instead mark its answer for a folder
as *incomplete* (GitHub lists at most 1,000 entries of a folder): the loader then reads paths in
that folder directly instead of trusting absence.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field


@dataclass
class Folder:
    """One folder's direct entries: files (repo-relative path -> git blob id, None where the host does
    not say) and sub-folders (repo-relative paths)."""

    files: dict[str, str | None] = field(default_factory=dict)
    folders: set[str] = field(default_factory=set)
    complete: bool = True  # False: the host listed only part of it


ListFolder = Callable[[str, str], Folder | None]  # (sha, folder) -> its entries, None when it does not exist


class FolderListing(Mapping[str, "str | None"]):
    """The files of commit *sha* as a mapping, filled folder by folder through *list_folder* (which returns
    None for a folder that does not exist; for the root, that is a RefNotFoundError naming *label*).

    ``path in listing`` and ``listing.get(path)`` list the folders on the way to *path* that are not
    known yet; iterating yields only the files of the folders listed so far. :meth:`files_in` lists
    one folder's files (for messages such as "Python files in flows/: ...")."""

    def __init__(self, list_folder: ListFolder, sha: str, label: str = "the host") -> None:
        self._list, self._sha, self._label = list_folder, sha, label
        self._listed: set[str] = set()
        self._folders: set[str] = {""}
        self._files: dict[str, str | None] = {}
        self._incomplete: set[str] = set()

    def _load(self, folder: str) -> bool:
        """List *folder* and the folders above it as needed; whether it exists."""
        parts = folder.split("/") if folder else []
        for depth in range(len(parts) + 1):
            current = "/".join(parts[:depth])
            parent = posixpath.dirname(current) if current else None
            if current not in self._folders and (parent is None or parent not in self._incomplete):
                return False  # the parent's (complete) listing says this folder does not exist
            if current not in self._listed:
                self._listed.add(current)
                found = self._list(self._sha, current)
                if found is None and not current:  # every commit has a root: no root, no such commit
                    from gitflows.errors import RefNotFoundError

                    raise RefNotFoundError(f"{self._label}: no commit {self._sha}")
                if found is None:
                    self._folders.discard(current)
                    return False
                self._folders.add(current)
                self._files.update(found.files)
                self._folders.update(found.folders)
                if not found.complete:
                    self._incomplete.add(current)
        return True

    def prime(self, folder: str, found: Folder | None) -> None:
        """Record *folder*'s entries (None: it does not exist) fetched along with something else (a host
        that lists folders in the same round trip as it reads files); a folder already listed is kept."""
        if folder in self._listed:
            return
        self._listed.add(folder)
        if found is None:
            self._folders.discard(folder)
            return
        self._folders.add(folder)
        self._files.update(found.files)
        self._folders.update(found.folders)
        if not found.complete:
            self._incomplete.add(folder)

    def next_to_list(self, folder: str) -> str | None:
        """The first folder on the way to *folder* that asking about a path in it would list now; None when
        nothing would be listed (all listed, or a complete listing already proves it absent)."""
        parts = folder.split("/") if folder else []
        for depth in range(len(parts) + 1):
            current = "/".join(parts[:depth])
            parent = posixpath.dirname(current) if current else None
            if current not in self._folders and (parent is None or parent not in self._incomplete):
                return None
            if current not in self._listed:
                return current
        return None

    def fetch(self, folder: str) -> Folder | None:
        """*folder*'s entries from the host, not recorded: safe on another thread; :meth:`record` keeps them."""
        return self._list(self._sha, folder)

    def record(self, folder: str, found: Folder | None) -> None:
        """Keep what :meth:`fetch` returned (no root: no such commit, as when listed here)."""
        if found is None and not folder and "" not in self._listed:
            from gitflows.errors import RefNotFoundError

            raise RefNotFoundError(f"{self._label}: no commit {self._sha}")
        self.prime(folder, found)

    def listed(self, folder: str) -> bool:
        return folder in self._listed

    def uncertain(self, path: str) -> bool:
        """Whether absence of *path* from this listing proves nothing (its folder was listed only in part)."""
        return posixpath.dirname(path) in self._incomplete

    def files_in(self, folder: str) -> list[str]:
        self._load(folder)
        return sorted(p for p in self._files if posixpath.dirname(p) == folder)

    def __getitem__(self, path: str) -> str | None:
        self._load(posixpath.dirname(path))
        return self._files[path]

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        return self._load(posixpath.dirname(path)) and path in self._files

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._files))

    def __len__(self) -> int:
        return len(self._files)
