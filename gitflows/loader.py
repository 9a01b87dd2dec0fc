"""The script-in-repo loader shared by every repository storage.

``load(host, path, ref, flow_name)``:

1. **Resolve**: a full 40-hex SHA is used as is (the host is never asked what a
   branch points to); a branch, tag or short SHA is resolved once; ``None``
   means the host's default branch (never an assumed "master").
2. **Closure** — one of two paths:

   * *registered* (ids known: ``build()`` recorded the closure): nothing to find; the files are
     read by blob id in one batch (:meth:`Host.read_many`) and each checked against its id;
   * *discovered* (:class:`_Discovery`): the script is read first, then each level of its imports
     (:func:`gitflows.imports.local_closure`) — on hosts that ``probe`` (GraphQL), every candidate
     path of a level in one request; elsewhere by listing only the folders resolution looks into.
     Never the whole repository: the cost does not grow with it. Files listed explicitly join.

3. **Verify**: every file against its git blob id — the registered record, or the id the host
   gave with the listing — by one function (:func:`_verify`). A mismatch is an
   :class:`~gitflows.errors.IntegrityError` naming repo, path and SHA. A missing commit is told
   apart from a missing repository once, here (:meth:`Host.check_repo`).
4. **Materialise** the closure as an immutable cache tree (temp, then rename).
   A tree found in the cache is checked file by file against the closure's
   blob ids first; a changed one is discarded (with a warning naming the
   files) and rebuilt from verified blobs, never run. The tree's shared lock
   is held from lookup until the script is imported (prune skips it).
5. **Import** the script with the tree root and the script's folder on
   ``sys.path``; both are restored afterwards.
6. **Select** the flow by name, or the only one; several and no name is an error.

Safe to call from several processes at once: the cache is. A warm load (same
host, repository, SHA and path) makes no network request at all, and touches
no library beyond the standard one until the script itself imports something.
"""

from __future__ import annotations

import functools
import hashlib
import os
import posixpath
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitflows.cache import Cache, closure_key, git_blob_id
from gitflows.errors import ConfigurationError, IntegrityError, PathNotFoundError, RefNotFoundError, ScriptError
from gitflows.flow import Flow, select_flow
from gitflows.hosts import Host, concurrently
from gitflows.hosts.listing import Folder, FolderListing
from gitflows.imports import local_closure, safe_relpath
from gitflows.redact import get_logger
from gitflows.script import extract_flows

log = get_logger(__name__)
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")

Closure = list[tuple[str, str]]  # [(repo-relative path, git blob id)]
DEPTH_ENV, MAX_DEPTH = "GITFLOWS_MAX_IMPORT_DEPTH", 50  # levels of sibling imports below the script
BYTES_ENV, MAX_BYTES = "GITFLOWS_MAX_CLOSURE_BYTES", 64 * 1024 * 1024  # total size of the files a flow needs
MAX_WAVES = 8  # folder depths listed ahead at once per level of imports (deeper ones: as resolution asks)


def _limit(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigurationError(f"{name}={raw!r} is not a positive whole number")
    return value


@dataclass
class Loaded:
    flow: Flow
    sha: str
    closure: Closure
    tree: Path


def is_full_sha(ref: str | None) -> bool:
    return bool(ref) and bool(FULL_SHA.match(str(ref)))


def resolve(host: Host, ref: str | None) -> str:
    """A full SHA as is; anything else through the host, once."""
    if ref is not None and is_full_sha(ref):
        return str(ref)
    try:
        sha = host.resolve(ref)
    except RefNotFoundError:
        host.check_repo()  # many APIs answer a missing repository and a missing ref with the same 404
        raise
    if not is_full_sha(sha):
        raise IntegrityError(f"{host.label()}: ref {ref!r} resolved to {sha!r}, which is not a full commit SHA")
    log.info("%s: resolved %s to %s", host.label(), ref or "the default branch", sha)
    return sha


def commit_visible(host: Host, sha: str) -> None:
    """Ask the host for commit *sha* (its root folder): RefNotFoundError (or RepoNotFoundError) when it
    does not have it. Listings are lazy, so this is what makes the request."""
    try:
        listing = host.tree(sha)
        if isinstance(listing, FolderListing):
            listing.files_in("")
    except RefNotFoundError:
        host.check_repo()
        raise


def _digest(parts: Iterable[object]) -> str:
    return hashlib.sha1(repr(list(parts)).encode()).hexdigest()[:16]


def _manifest_key(host: Host, sha: str, path: str, extra: Sequence[str]) -> tuple[str, ...]:
    return ("manifests", *host.cache_key(), sha, _digest([path, *sorted(extra)]))


def _tree_key(host: Host, sha: str, closure: Closure) -> tuple[str, ...]:
    return closure_key(host.cache_key(), sha, closure)


def _closure(host: Host, path: str, sha: str, cache: Cache, expected: Closure | None, extra: Sequence[str],
             from_host: bool) -> tuple[Closure, dict[str, bytes]]:
    """The closure of *path* at *sha* and whatever verified contents finding it required.

    With *expected* (the registered record) that record; else, unless *from_host*, the cached manifest
    of an earlier load; else a walk of the script's imports, every file verified against the host."""
    if expected:
        return [(safe_relpath(p), b) for p, b in expected], {}
    if not from_host:
        manifest = cache.get_json(_manifest_key(host, sha, path, extra))
        try:
            closure = [(safe_relpath(p), str(b)) for p, b in manifest["closure"]] if manifest else []
        except (TypeError, ValueError, KeyError):
            closure = []  # an unreadable manifest: walk again
        if closure:
            log.debug("%s: closure of %s at %s from the cache", host.label(), path, sha)
            return closure, {}
    return _walk(host, path, sha, cache, extra)


def _walk(host: Host, path: str, sha: str, cache: Cache, extra: Sequence[str]) -> tuple[Closure, dict[str, bytes]]:
    """Discover the closure of *path* at *sha* by walking its imports (see :class:`_Discovery`)."""
    walk = _Discovery(host, path, sha, cache)
    walk.start(path, extra)
    paths = local_closure(path, read=walk.read, exists=walk.exists, extra=extra, prefetch=walk.prefetch,
                          probe=walk.probe if host.probes else walk.probe_listed if walk.concurrent else None)
    for rel in paths:  # explicitly listed data files are read too
        walk.read(rel)
    closure = [(rel, git_blob_id(walk.files[rel])) for rel in paths]
    cache.put_json(_manifest_key(host, sha, path, extra), {"closure": closure})
    return closure, {rel: walk.files[rel] for rel in paths}


class _Discovery:
    """One walk of a script's imports at one commit.

    Existence comes from reading every candidate path of a level at once when the host probes
    (GraphQL: one request per level), else from the host's listing (listed folder by folder, only
    where import resolution looks). Either way the cost does not grow with the repository. Contents
    come from the cache when it has the blob, else from the host — one batch per level of imports
    (``read_many``) — and every file the listing gives a blob id for is verified against it.
    Bounds: import depth and total bytes."""

    def __init__(self, host: Host, script: str, sha: str, cache: Cache) -> None:
        self.host, self.sha, self.cache, self.label = host, sha, cache, host.label()
        self.where = f"{self.label}: {script} at commit {sha}"
        self.script_dir = posixpath.dirname(script)
        self.listing = host.tree(sha)
        self.files: dict[str, bytes] = {}
        self.missing: set[str] = set()
        self.levels, self.total = -1, 0
        self.max_depth, self.max_bytes = _limit(DEPTH_ENV, MAX_DEPTH), _limit(BYTES_ENV, MAX_BYTES)

    def start(self, script: str, extra: Sequence[str]) -> None:
        """Read the script (and the files listed explicitly) in one batch, before any listing: a host that
        lists folders in the same round trip does so here. A missing script is a PathNotFoundError naming
        the Python files beside it."""
        wanted = [(rel, self.sha, None) for rel in dict.fromkeys([script, *extra])]
        for rel, data in self._read_and_list(wanted, script).items():
            self._store(rel, data)
        if script in self.files:
            return
        folder = posixpath.dirname(script)
        if isinstance(self.listing, FolderListing):
            beside = self.listing.files_in(folder)
        else:
            beside = sorted(p for p in self.listing or () if posixpath.dirname(p) == folder)
        nearby = [p for p in beside if p.endswith(".py")]
        hint = f"; Python files in {folder or 'the root'}/: {', '.join(nearby[:10])}" if nearby else ""
        raise PathNotFoundError(f"{self.label}: {script} does not exist at commit {self.sha}{hint}")

    def _read_and_list(self, wanted: Sequence[tuple[str, str, str | None]], script: str) -> dict[str, bytes]:
        """Read *wanted*; a host listing folders one request each, that can have several in flight, lists the
        folders on the script's way (the root to its folder: import resolution looks there first) at the same
        time, so they cost one round trip of waiting with the script's read, not one each after it."""
        if not self.concurrent:
            return _read_many(self.host, wanted)
        listing = self.listing
        assert isinstance(listing, FolderListing)
        parts = posixpath.dirname(script).split("/") if posixpath.dirname(script) else []
        folders = [f for f in ("/".join(parts[:depth]) for depth in range(len(parts) + 1)) if not listing.listed(f)]
        return self._at_once([wanted], folders)[0]

    def _at_once(self, reads: list[Sequence[tuple[str, str, str | None]]], folders: list[str]) -> list[dict[str, bytes]]:
        """Each batch of *reads* and the listing of each of *folders*, all at the same time; the listings are
        recorded (on this thread), the batches' answers returned in order."""
        listing = self.listing
        assert isinstance(listing, FolderListing)
        tasks: list[Callable[[], object]] = [functools.partial(_read_many, self.host, batch) for batch in reads]
        tasks += [functools.partial(listing.fetch, folder) for folder in folders]
        answers = concurrently(_run, tasks, self.host.concurrent_reads)
        for folder, entries in zip(folders, answers[len(reads):], strict=True):
            listing.record(folder, entries if isinstance(entries, Folder) else None)
        return [answer if isinstance(answer, dict) else {} for answer in answers[:len(reads)]]

    @property
    def concurrent(self) -> bool:
        """A host that lists folder by folder and can have several requests in flight."""
        return isinstance(self.listing, FolderListing) and self.host.concurrent_reads > 1

    def probe_listed(self, paths: list[str]) -> None:
        """What resolution would ask one request at a time about a level's candidates in the script's folder
        — listings of the folders on their way, reads of paths in folders listed only in part — asked at once:
        a wave per folder depth. Only the first place imports are looked up (the script's folder) is probed:
        the repository root is asked about only when that finds nothing, so it is left to resolution."""
        listing = self.listing
        assert isinstance(listing, FolderListing)
        scope = self.script_dir + "/" if self.script_dir else ""
        local = [p for p in paths if p.startswith(scope)]
        for _ in range(MAX_WAVES):
            folders = sorted({f for p in local if (f := listing.next_to_list(posixpath.dirname(p))) is not None})
            uncertain = [p for p in local if p not in self.files and p not in self.missing
                         and listing.listed(posixpath.dirname(p)) and self._listed(p) is None]
            if not folders and not uncertain:
                return
            answers = self._at_once([[(rel, self.sha, None)] for rel in uncertain], folders)
            for rel, found in zip(uncertain, answers, strict=True):
                if rel in found:
                    self._store(rel, found[rel])
                else:
                    self.missing.add(rel)

    def probe(self, paths: list[str]) -> None:
        """Read every path a level of imports could resolve to, in one batch: what the host returns exists
        (and is read), the rest does not."""
        wanted = [(rel, self.sha, None) for rel in paths if rel not in self.files and rel not in self.missing]
        found = _read_many(self.host, wanted)
        for rel, _, _ in wanted:
            if rel in found:
                self._store(rel, found[rel])
            else:
                self.missing.add(rel)

    def _listed(self, rel: str) -> bool | None:
        """Whether the listing has *rel*; None when it cannot tell (a probing host, no listing, or a folder
        listed in part)."""
        if self.listing is None or self.host.probes:
            return None
        if rel in self.listing:
            return True
        if isinstance(self.listing, FolderListing) and self.listing.uncertain(rel):
            return None
        return False

    def _blob_id(self, rel: str) -> str | None:
        return self.listing.get(rel) if self.listing is not None and self._listed(rel) else None

    def exists(self, rel: str) -> bool:
        listed = self._listed(rel)
        if listed is not None:
            return listed
        if rel in self.files:
            return True
        if rel in self.missing:
            return False
        try:
            self.read(rel)
            return True
        except PathNotFoundError:
            self.missing.add(rel)
            return False

    def read(self, rel: str) -> bytes:
        if rel not in self.files:
            blob = self._blob_id(rel)
            data = self.cache.get_blob(blob) if blob else None
            if data is not None:
                self._keep(rel, data)
            else:
                found = _read_many(self.host, [(rel, self.sha, blob)])
                if rel not in found:
                    raise PathNotFoundError(f"{self.label}: {rel} does not exist at commit {self.sha}")
                self._store(rel, found[rel])
        return self.files[rel]

    def prefetch(self, paths: list[str]) -> None:
        """Called once for the script, then once per level of imports: read what the cache lacks in one batch."""
        self.levels += 1
        if self.levels > self.max_depth:
            raise ScriptError(f"{self.where}: its imports of repository modules nest deeper than {self.max_depth} "
                              f"levels (at {', '.join(paths[:3])}); flatten the chain or set {DEPTH_ENV}")
        wanted = []
        for rel in paths:
            if rel in self.files or not self._listed(rel):
                continue  # already read, or existence unknown (read one by one when asked)
            blob = self._blob_id(rel)
            data = self.cache.get_blob(blob) if blob else None
            if data is not None:
                self._keep(rel, data)
            else:
                wanted.append((rel, self.sha, blob))
        for rel, data in _read_many(self.host, wanted).items():
            self._store(rel, data)

    def _store(self, rel: str, data: bytes) -> None:
        blob = self._blob_id(rel)
        if blob:
            _verify(self.label, rel, self.sha, data, blob, "the host's listing")
        self._keep(rel, data)
        self.cache.put_blob(data)

    def _keep(self, rel: str, data: bytes) -> None:
        self.total += len(data)
        if self.total > self.max_bytes:
            raise ScriptError(f"{self.where}: the files it needs exceed {self.max_bytes} bytes (at {rel}); set "
                              f"{BYTES_ENV} to allow more")
        self.files[rel] = data


def _tree(host: Host, sha: str, cache: Cache, closure: Closure, files: dict[str, bytes],
          source: str = "the registered record") -> Path:
    """The tree of *closure* under the cache, every file matching its blob id. Call it holding the tree's
    lock. An existing tree is checked file by file (a few files: cheap); one changed on disk is discarded
    and rebuilt from verified blobs (fetching what the cache lacks) and never used."""
    label = host.label()
    key = _tree_key(host, sha, closure)
    if cache.has_tree(key):
        changed = cache.check_tree(key, dict(closure))
        if not changed:
            return cache.tree_path(key)  # intact (taking the lock marked it as used)
        log.warning("%s: cached tree %s at commit %s was changed on disk (%s); discarding it and rebuilding it "
                    "from verified content", label, cache.tree_path(key), sha, ", ".join(changed))
        cache.discard_tree(key)
    for rel, blob in closure:
        if rel not in files and (data := cache.get_blob(blob)) is not None:
            files[rel] = data
    wanted = [(rel, sha, blob) for rel, blob in closure if rel not in files]
    fetched = _read_many(host, wanted)
    for rel, blob in closure:
        if rel in fetched:
            _verify(label, rel, sha, fetched[rel], blob, source)
            cache.put_blob(fetched[rel])
            files[rel] = fetched[rel]
    absent = [rel for rel, _ in closure if rel not in files]
    if absent:
        raise IntegrityError(f"{label}: registered files at commit {sha} are not on the server (was history "
                             f"rewritten?): {', '.join(absent)}")
    return cache.materialise(key, {rel: files[rel] for rel, _ in closure})


def _run(task: Callable[[], object]) -> object:
    return task()


def _read_many(host: Host, items: Sequence[tuple[str, str, str | None]]) -> dict[str, bytes]:
    """Several files in as few round trips as the host can (its ``read_many``)."""
    return host.read_many(items) if items else {}


def _verify(label: str, path: str, sha: str, data: bytes, expected: str, source: str) -> None:
    actual = git_blob_id(data)
    if actual != expected:
        raise IntegrityError(f"{label}: {path} at commit {sha}: fetched content has blob id {actual}, "
                             f"{source} says {expected}; refusing to use it")


def load(host: Host, path: str, ref: str | None = None, flow_name: str | None = None,
         cache: Cache | None = None, expected: Closure | None = None, extra: Sequence[str] = (),
         from_host: bool = False) -> Loaded:
    """Load *flow_name* from *path* at *ref* in the host's repository (see the module docs).

    *from_host* (``build()`` records what it returns): the closure is walked again, every file verified
    against the host, never taken from a cached manifest. The tree's shared lock is held from lookup
    until the script has been imported and this returns (``gitflows cache prune`` skips it meanwhile).
    """
    cache = cache or Cache()
    path = safe_relpath(path)
    sha = resolve(host, ref)
    try:
        closure, files = _closure(host, path, sha, cache, expected, extra, from_host)
    except RefNotFoundError:  # the commit is not there: or is it the repository?
        host.check_repo()
        raise
    with cache.holding(_tree_key(host, sha, closure)):
        tree = _tree(host, sha, cache, closure, files, "the registered record" if expected else "the cached closure")
        script = tree.joinpath(*path.split("/"))
        saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in a verified tree
        try:
            flows = extract_flows(file_path=str(script), extra_paths=[str(tree)],
                                  display_name=f"{host.label()}: {path} at {sha[:12]}")
        finally:
            sys.dont_write_bytecode = saved
    flow = select_flow(flows, flow_name, f"{path} at {sha[:12]} in {host.label()}")
    return Loaded(flow=flow, sha=sha, closure=closure, tree=tree)
