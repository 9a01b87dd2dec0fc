from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from gitflows.cache import Cache, git_blob_id
from gitflows.errors import ConfigurationError, IntegrityError


def test_blob_id_matches_git(tmp_path):
    import subprocess

    f = tmp_path / "x"
    f.write_bytes(b"hello\n")
    out = subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True, check=True).stdout.strip()
    assert git_blob_id(b"hello\n") == out


def test_blobs_are_verified_on_write_and_read(tmp_path):
    cache = Cache(tmp_path)
    blob = cache.put_blob(b"data")
    assert cache.get_blob(blob) == b"data"
    with pytest.raises(IntegrityError, match="does not match the expected"):
        cache.put_blob(b"other", expected_id=blob, what="flows/etl.py")
    path = tmp_path / "blobs" / blob[:2] / blob[2:]
    path.write_bytes(b"corrupted")
    assert cache.get_blob(blob) is None and not path.exists()
    with pytest.raises(ConfigurationError):
        cache.get_blob("../../etc/passwd")


def test_tree_is_materialised_once_and_never_modified(tmp_path):
    cache = Cache(tmp_path)
    key = ("github", "acme/flows", "a" * 40)
    tree = cache.materialise(key, {"flows/etl.py": b"v1", "flows/lib/h.py": b"h"})
    assert (tree / "flows/etl.py").read_bytes() == b"v1"
    again = cache.materialise(key, {"flows/etl.py": b"v2"})
    assert again == tree and (tree / "flows/etl.py").read_bytes() == b"v1"
    assert cache.has_tree(key)


@pytest.mark.parametrize("bad", [{"../escape.py": b"x"}, {"/abs.py": b"x"}])
def test_tree_paths_cannot_escape(tmp_path, bad):
    cache = Cache(tmp_path)
    with pytest.raises(ConfigurationError):
        cache.materialise(("h", "r", "s"), bad)
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "trees" / "h" / "r").iterdir())


def test_key_segments_cannot_escape(tmp_path):
    with pytest.raises(ConfigurationError):
        Cache(tmp_path).tree_path(("github", "../..", "sha"))


def _fill(root, key, n, barrier):
    barrier.wait()
    cache = Cache(root)
    files = {f"f{i}.py": (f"content {i} " * 2000).encode() for i in range(n)}
    tree = cache.materialise(key, files)
    assert all((tree / name).read_bytes() == data for name, data in files.items())
    cache.put_blob(b"shared blob")


def test_several_processes_fill_the_same_entry(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(6)
    key = ("git", "acme/flows", "b" * 40)
    procs = [ctx.Process(target=_fill, args=(str(tmp_path), key, 50, barrier)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 6
    parent = tmp_path / "trees" / "git" / "acme" / "flows"
    assert [p.name for p in parent.iterdir()] == ["b" * 40]  # no half-written or temp folders left
    assert len(list((parent / ("b" * 40)).glob("f*.py"))) == 50


def _hold(root, tree, ready, release):
    cache = Cache(root)
    with cache.using(tree):
        ready.set()
        release.wait(30)


def test_prune_keeps_trees_in_use_and_removes_old_ones(tmp_path):
    cache = Cache(tmp_path)
    busy = cache.materialise(("h", "r", "busy"), {"a.py": b"a"})
    idle = cache.materialise(("h", "r", "idle"), {"a.py": b"a"})
    cache.put_blob(b"old")
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path), busy, ready, release))
    holder.start()
    assert ready.wait(30)
    old = time.time() - 90 * 86400
    for p in (busy, idle):  # both look unused for 90 days; one is locked by a running flow
        os.utime(p, (old, old))
    try:
        removed = cache.prune(older_than=30 * 86400)
    finally:
        release.set()
        holder.join(30)
    assert removed["trees"] == 1 and removed["busy"] == 1
    assert busy.exists() and not idle.exists()
    assert removed["blobs"] == 0  # the blob is fresh
    assert cache.prune(everything=True)["blobs"] == 1
    info = cache.info()
    assert info["trees"]["count"] == 0 and info["blobs"]["files"] == 0


def test_json_documents(tmp_path):
    cache = Cache(tmp_path)
    assert cache.get_json(("manifests", "x")) is None
    cache.put_json(("manifests", "acme/flows", "sha"), {"files": [["a.py", "1" * 40]]})
    assert cache.get_json(("manifests", "acme/flows", "sha")) == {"files": [["a.py", "1" * 40]]}
