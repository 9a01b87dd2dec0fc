"""A commit's files read from its fetched trees folder by folder: a path costs the folders on its way, and a
server answer missing a tree is an error naming it, never a file taken to be absent."""

from __future__ import annotations

import pytest
from dulwich.object_store import MemoryObjectStore
from dulwich.objects import Blob, Tree

from gitflows.errors import IntegrityError
from gitflows.hosts.git import TreeListing


def _store(with_lib: bool = True):
    store = MemoryObjectStore()
    blob = Blob.from_string(b"X = 1\n")
    lib = Tree()
    lib.add(b"helpers.py", 0o100644, blob.id)
    flows = Tree()
    flows.add(b"etl.py", 0o100644, blob.id)
    flows.add(b"lib", 0o040000, lib.id)
    root = Tree()
    root.add(b"flows", 0o040000, flows.id)
    root.add(b"README.md", 0o100644, blob.id)
    for obj in (blob, flows, root, *([lib] if with_lib else [])):
        store.add_object(obj)
    return store, root.id, blob.id.decode()


def test_paths_are_looked_up_folder_by_folder():
    store, root, blob = _store()
    listing = TreeListing(store, root, "git x at commit c")
    assert listing["flows/etl.py"] == blob and listing.get("flows/lib/helpers.py") == blob
    assert "flows/lib" not in listing and "flows/missing.py" not in listing and "nope/x.py" not in listing
    assert "flows/lib" in listing._folders and "nope" in listing._folders  # only the folders asked about were read
    assert sorted(listing) == ["README.md", "flows/etl.py", "flows/lib/helpers.py"] and len(listing) == 3


def test_a_tree_the_server_did_not_send_is_an_error_not_an_absent_file():
    store, root, _ = _store(with_lib=False)
    listing = TreeListing(store, root, "git x at commit c")
    assert "flows/etl.py" in listing  # the folders that arrived still answer
    with pytest.raises(IntegrityError, match="lacks the tree of flows/lib/.*incomplete pack"):
        _ = "flows/lib/helpers.py" in listing
    with pytest.raises(IntegrityError):
        list(listing)
