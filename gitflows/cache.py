"""A content-addressed cache folder shared by every gitflows process on a machine.

Layout under the root (``GITFLOWS_CACHE_DIR``, default ``~/.cache/gitflows``)::

    blobs/ab/cdef...     file contents, named by git blob id (verified on write and read)
    docs/<key...>.json   small JSON documents (manifests: which blobs a pinned script needs)
    trees/<key...>/      materialised file trees, one folder per (host, repo, sha, closure)
    locks/<digest>.lock  shared/exclusive locks that keep prune away from trees in use

Contract (what is safe concurrently):

* Every write goes to a temporary name in the same folder, then ``os.replace``
  / ``os.rename`` puts it in place: no reader ever sees a half-written entry.
* A completed tree is never modified. Several processes may materialise the
  same tree at once; one rename wins, the others discard their copy and use it.
* :meth:`Cache.holding` takes a shared lock on a tree *before* looking it up
  and keeps it while the tree is used; :meth:`Cache.prune` only removes a
  tree it can lock exclusively, so it never pulls a tree from under a load.
* :meth:`Cache.check_tree` compares a tree's files with their blob ids (a
  completed tree edited on disk is detected, discarded and rebuilt).
* Prune never touches temporary files younger than :data:`TEMP_GRACE`
  seconds (another process is writing them), even with ``everything``.
* An I/O error of the cache folder (disk full, permissions) is a one-line
  :class:`CacheError` naming the folder and what to do.
* Nothing here talks to the network, and a failed fetch elsewhere never
  deletes a cache entry. Only the standard library is imported.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from gitflows.errors import ConfigurationError, FlowStorageError, GitflowsError, IntegrityError
from gitflows.imports import safe_relpath
from gitflows.redact import get_logger

log = get_logger(__name__)
TREE_MARKER = ".gitflows-tree"
MAX_SEGMENT, MAX_KEY = 100, 1024  # bytes of one path segment / characters of a whole key under the cache
TEMP_GRACE = 3600  # seconds: prune leaves younger temporary files alone (a writer may still be at work)


class CacheError(FlowStorageError):
    """The cache folder could not be read or written (disk full, permissions, a read-only file system)."""


@contextlib.contextmanager
def _io(root: Path, what: str) -> Iterator[None]:
    """Turn an OSError of the cache folder into one line naming the folder, the cause and what to do."""
    try:
        yield
    except GitflowsError:
        raise
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, "")
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = "free some space, run `gitflows cache prune`, or point GITFLOWS_CACHE_DIR elsewhere"
        else:
            hint = "check the folder's permissions, or point GITFLOWS_CACHE_DIR elsewhere"
        cause = f"{exc.strerror or exc}{f' ({code})' if code else ''}"
        raise CacheError(f"gitflows cache {root}: cannot {what}: {cause}; {hint}") from None


def git_blob_id(data: bytes) -> str:
    """The id git gives a file with these contents: ``sha1(b"blob <len>\\0" + data)``."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def closure_key(origin: tuple[str, ...], sha: str, closure: list[tuple[str, str]]) -> tuple[str, ...]:
    """The one key scheme for a materialised closure (the loader, registration and review alike):
    where it came from (a host's ``cache_key()``, or ``("local",)`` for this repository's own objects),
    the commit, and a digest of the (path, blob id) pairs — the same files at the same commit share a
    tree whoever asks."""
    digest = hashlib.sha1(repr(sorted(list(c) for c in closure)).encode()).hexdigest()[:16]
    return (*origin, sha, digest)


def default_root() -> Path:
    explicit = os.environ.get("GITFLOWS_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gitflows"


def _segments(key: Sequence[str]) -> list[str]:
    parts: list[str] = []
    for item in key:
        for seg in str(item).split("/"):
            if not seg or seg in (".", "..") or seg.startswith(".") or "\x00" in seg or "\\" in seg:
                raise ConfigurationError(f"invalid cache key segment {seg!r} in {'/'.join(map(str, key))!r}")
            parts.append(_bounded(seg))
    if not parts:
        raise ConfigurationError("empty cache key")
    if sum(len(p) + 1 for p in parts) > MAX_KEY:  # very deep names (nested groups): keep a readable head
        parts = [*parts[:2], "~" + hashlib.sha1("/".join(parts).encode()).hexdigest()]
    return parts


def _bounded(seg: str) -> str:
    """*seg*, or for an oversized one (a file system allows 255 bytes) its head and a digest of the whole."""
    if len(seg.encode()) <= MAX_SEGMENT:
        return seg
    head = seg.encode()[:48].decode(errors="ignore")
    return f"{head}~{hashlib.sha1(seg.encode()).hexdigest()[:16]}"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


class Cache:
    """The cache folder. Cheap to create; holds no open files between calls."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    # -- blobs ------------------------------------------------------------------
    def _blob_path(self, blob_id: str) -> Path:
        if len(blob_id) != 40 or any(c not in "0123456789abcdef" for c in blob_id):
            raise ConfigurationError(f"invalid blob id {blob_id!r}")
        return self.root / "blobs" / blob_id[:2] / blob_id[2:]

    def get_blob(self, blob_id: str) -> bytes | None:
        """The contents with this blob id, or None. A corrupt entry is removed and reported as absent."""
        path = self._blob_path(blob_id)
        with _io(self.root, f"read {path}"):
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # absent, or removed meanwhile by prune (even if put back since)
                return None
        if git_blob_id(data) != blob_id:
            log.warning("cache entry %s is corrupt; removing it", path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        return data

    def put_blob(self, data: bytes, expected_id: str | None = None, what: str = "content") -> str:
        """Store *data*; with *expected_id*, refuse it (IntegrityError) when its blob id differs."""
        blob_id = git_blob_id(data)
        if expected_id is not None and blob_id != expected_id:
            raise IntegrityError(f"{what}: blob id {blob_id} does not match the expected {expected_id}")
        path = self._blob_path(blob_id)
        if not path.exists():
            with _io(self.root, f"write {what} to {path}"):
                _atomic_write(path, data)
        return blob_id

    # -- small documents ----------------------------------------------------------
    def _doc_path(self, key: Sequence[str]) -> Path:
        parts = _segments(key)
        return self.root.joinpath("docs", *parts[:-1], parts[-1] + ".json")

    def get_json(self, key: Sequence[str]) -> Any:
        try:
            return json.loads(self._doc_path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("cache document %s is corrupt; ignoring it", self._doc_path(key))
            return None

    def put_json(self, key: Sequence[str], value: Any) -> None:
        path = self._doc_path(key)
        with _io(self.root, f"write {path}"):
            _atomic_write(path, json.dumps(value, sort_keys=True).encode())

    # -- trees --------------------------------------------------------------------
    def tree_path(self, key: Sequence[str]) -> Path:
        return self.root.joinpath("trees", *_segments(key))

    def has_tree(self, key: Sequence[str]) -> bool:
        return (self.tree_path(key) / TREE_MARKER).is_file()

    def materialise(self, key: Sequence[str], files: Mapping[str, bytes]) -> Path:
        """Write *files* (repo-relative path -> bytes) as the tree *key*, atomically; return its folder.

        If the tree already exists it is returned untouched (completed trees are immutable).
        """
        final = self.tree_path(key)
        if (final / TREE_MARKER).is_file():
            self._touch(final)
            return final
        with _io(self.root, f"write the tree {final}"):
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex}"
            try:
                tmp.mkdir()
                for rel, data in files.items():
                    target = tmp.joinpath(*safe_relpath(rel).split("/"))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                (tmp / TREE_MARKER).write_text(json.dumps({"key": list(map(str, key)), "files": sorted(files)}))
                try:
                    os.rename(tmp, final)
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final

    def check_tree(self, key: Sequence[str], expected: Mapping[str, str]) -> list[str]:
        """The files of tree *key* that differ from *expected* (repo-relative path -> git blob id): changed,
        missing, or present without being expected (a ``__pycache__`` too). Empty: the tree is intact."""
        root = self.tree_path(key)
        bad: list[str] = []
        for rel, blob in sorted(expected.items()):
            try:
                data = root.joinpath(*safe_relpath(rel).split("/")).read_bytes()
            except OSError:
                bad.append(rel)
                continue
            if git_blob_id(data) != blob:
                bad.append(rel)
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
                if rel != TREE_MARKER and rel not in expected:
                    bad.append(rel)
        return bad

    def discard_tree(self, key: Sequence[str]) -> None:
        """Move the tree *key* aside and delete it (a process still reading it keeps its open files)."""
        tree = self.tree_path(key)
        trash = tree.parent / f".trash-{tree.name}-{uuid.uuid4().hex}"
        with _io(self.root, f"discard the tree {tree}"):
            try:
                os.rename(tree, trash)
            except FileNotFoundError:
                return
        shutil.rmtree(trash, ignore_errors=True)

    def _touch(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            os.utime(path)

    def _lock_path(self, tree: Path) -> Path:
        digest = hashlib.sha1(str(tree).encode()).hexdigest()
        return self.root / "locks" / f"{digest}.lock"

    @contextlib.contextmanager
    def using(self, tree: Path) -> Iterator[Path]:
        """Hold a shared lock on a materialised tree while it is in use (prune skips it)."""
        lock = self._lock_path(tree)
        with _io(self.root, f"lock {lock}"):
            lock.parent.mkdir(parents=True, exist_ok=True)
            fh = open(lock, "a")  # noqa: SIM115 - closed below, after the block
        with fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            try:
                self._touch(tree)
                yield tree
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def holding(self, key: Sequence[str]) -> contextlib.AbstractContextManager[Path]:
        """A shared lock on tree *key*, taken *before* the tree is looked up or written and kept for the
        block: prune cannot remove the tree between lookup and use. Yields the tree's folder."""
        return self.using(self.tree_path(key))

    def _trees(self) -> Iterator[Path]:
        base = self.root / "trees"
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            if TREE_MARKER in filenames:
                dirnames[:] = []
                yield Path(dirpath)
            else:
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]

    # -- maintenance ----------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Counts and sizes of what the cache holds."""
        out: dict[str, Any] = {"root": str(self.root)}
        for section in ("blobs", "docs", "trees"):
            count = size = 0
            base = self.root / section
            for dirpath, _dirs, files in os.walk(base):
                for name in files:
                    if name == TREE_MARKER or name.startswith(".tmp-"):
                        continue
                    with contextlib.suppress(OSError):
                        size += os.path.getsize(os.path.join(dirpath, name))
                        count += 1
            out[section] = {"files": count, "bytes": size}
        out["trees"]["count"] = sum(1 for _ in self._trees())
        return out

    def prune(self, older_than: float | None = 30 * 86400, everything: bool = False) -> dict[str, int]:
        """Remove entries unused for *older_than* seconds (or all with *everything*); skip trees in use
        and temporary files younger than :data:`TEMP_GRACE` (another process is still writing them)."""
        with _io(self.root, "prune"):
            return self._prune(time.time() - (older_than or 0), everything)

    def _prune(self, cutoff: float, everything: bool) -> dict[str, int]:
        removed = {"trees": 0, "blobs": 0, "docs": 0, "busy": 0}
        removed["trees"], removed["busy"] = self._prune_trees(cutoff, everything)
        for section in ("blobs", "docs"):
            removed[section] = self._prune_files(section, cutoff, everything)
        self._remove_leftovers()
        return removed

    def _prune_trees(self, cutoff: float, everything: bool) -> tuple[int, int]:
        """Remove the trees unused since *cutoff* (all with *everything*) that no process holds.
        Returns (trees removed, trees skipped because in use)."""
        removed = busy = 0
        for tree in list(self._trees()):
            try:
                if not everything and tree.stat().st_mtime > cutoff:
                    continue
            except FileNotFoundError:
                continue
            lock = self._lock_path(tree)
            lock.parent.mkdir(parents=True, exist_ok=True)
            with open(lock, "a") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    busy += 1
                    continue
                if self._discard_tree(tree):
                    removed += 1
        return removed, busy

    @staticmethod
    def _discard_tree(tree: Path) -> bool:
        """Move *tree* aside, then delete it; False when it is gone already. The caller holds its lock."""
        trash = tree.parent / f".trash-{tree.name}-{uuid.uuid4().hex}"
        try:
            os.rename(tree, trash)
        except FileNotFoundError:
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def _prune_files(self, section: str, cutoff: float, everything: bool) -> int:
        """Remove the files of *section* ("blobs", "docs") unused since *cutoff* (all with *everything*);
        returns how many."""
        removed = 0
        for dirpath, _dirs, files in os.walk(self.root / section):
            for name in files:
                if name.startswith(".tmp-"):
                    continue  # a writer's temporary file: left to the grace rule of _remove_leftovers
                path = os.path.join(dirpath, name)
                with contextlib.suppress(FileNotFoundError):
                    if everything or os.path.getmtime(path) <= cutoff:
                        os.unlink(path)
                        removed += 1
        return removed

    def _remove_leftovers(self) -> None:
        """Remove the temporary files and trash of crashed writers (never a young one, older than
        :data:`TEMP_GRACE`: its writer may be at work)."""
        grace = time.time() - TEMP_GRACE
        for dirpath, dirs, files in os.walk(self.root):
            for name in dirs + files:
                if name.startswith(".tmp-") or name.startswith(".trash-"):
                    path = os.path.join(dirpath, name)
                    with contextlib.suppress(OSError):
                        if os.path.getmtime(path) <= grace:
                            if os.path.isdir(path):
                                shutil.rmtree(path, ignore_errors=True)
                            else:
                                os.unlink(path)
