"""The loader driven by an in-memory host that counts its requests: the cost of a cold load does
not grow with the repository, a registered closure costs only its reads, a warm load costs none,
batching hosts pay one request per level of imports, and partial listings are not trusted."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pytest

from gitflows.cache import Cache, git_blob_id
from gitflows.errors import IntegrityError, PathNotFoundError, RefNotFoundError
from gitflows.hosts import OneByOne
from gitflows.hosts.listing import Folder, FolderListing
from gitflows.loader import load

SHA = "1" * 40

FLOW = {
    "flows/etl.py": (
        "import os, json\n"
        "from gitflows import Flow, task\n"
        "from lib.helpers import scale\n"
        "from lib import fmt\n"
        "import consts\n"
        "\n"
        "@task\n"
        "def transform():\n"
        "    return fmt.label(scale([1, 2], consts.FACTOR))\n"
        "\n"
        "with Flow('etl') as flow:\n"
        "    transform()\n"
    ),
    "flows/lib/__init__.py": "",
    "flows/lib/helpers.py": "def scale(rows, factor):\n    return [r * factor for r in rows]\n",
    "flows/lib/fmt.py": "from .helpers import scale\n\ndef label(rows):\n    return ','.join(map(str, rows))\n",
    "flows/consts.py": "FACTOR = 10\n",
}
CLOSURE_FILES = sorted(FLOW)


def repository(size: int) -> dict[str, bytes]:
    """FLOW plus *size* unrelated files spread over many folders (the flow's folders get some too)."""
    files = {path: text.encode() for path, text in FLOW.items()}
    for i in range(size - len(files)):
        folder = ["flows", "flows/lib", f"pkg{i % 97}", f"pkg{i % 97}/sub{i % 7}", "docs"][i % 5]
        files[f"{folder}/m{i}.py"] = f"X = {i}\n".encode()
    return files


class MemoryHost(OneByOne):
    """A host over a dict of files; every list and read is a counted request."""

    kind = "memory"

    def __init__(self, files: dict[str, bytes], folder_limit: int | None = None, batch: bool = False,
                 serve: dict[str, bytes] | None = None) -> None:
        self.files, self.folder_limit, self.batch = files, folder_limit, batch
        self.serve = serve or {}  # what the "server" sends instead of the real bytes (tampering)
        self.requests: list[tuple[str, str]] = []
        self.repo_id = hashlib.sha1(repr(sorted(files)).encode()).hexdigest()[:8]

    def label(self) -> str:
        return f"Memory {self.repo_id}"

    def cache_key(self) -> tuple[str, ...]:
        return ("memory", self.repo_id)

    def resolve(self, ref: str | None) -> str:
        self.requests.append(("resolve", str(ref)))
        return SHA

    def tree(self, sha: str) -> FolderListing:
        return FolderListing(self._list, sha)

    def _list(self, sha: str, folder: str) -> Folder | None:
        self.requests.append(("list", folder))
        if sha != SHA:
            raise RefNotFoundError(f"{self.label()}: no commit {sha}")
        prefix = f"{folder}/" if folder else ""
        listed = Folder()
        for path in sorted(self.files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            if "/" in rest:
                listed.folders.add(prefix + rest.split("/")[0])
            else:
                listed.files[path] = git_blob_id(self.files[path])
        if folder and not listed.files and not listed.folders:
            return None
        if self.folder_limit is not None and len(listed.files) > self.folder_limit:
            listed.files = dict(sorted(listed.files.items())[: self.folder_limit])
            listed.complete = False
        return listed

    def _bytes(self, path: str) -> bytes:
        if path not in self.files:
            raise PathNotFoundError(f"{self.label()}: {path} does not exist at commit {SHA}")
        return self.serve.get(path, self.files[path])

    def read(self, path: str, sha: str, blob_id: str | None = None) -> bytes:
        self.requests.append(("read", path))
        return self._bytes(path)

    def read_many(self, items: Iterable[tuple[str, str, str | None]]) -> dict[str, bytes]:
        items = list(items)
        if not self.batch:
            return super().read_many(items)
        self.requests.append(("read_many", ",".join(p for p, _, _ in items)))
        return {path: self._bytes(path) for path, _, _ in items}


def kinds(host: MemoryHost) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind, _ in host.requests:
        out[kind] = out.get(kind, 0) + 1
    return out


@pytest.mark.parametrize("size", [100, 5_000, 30_000])
def test_a_cold_load_costs_the_same_whatever_the_repository_size(size, tmp_path):
    host = MemoryHost(repository(size))
    loaded = load(host, "flows/etl.py", SHA, "etl", cache=Cache(tmp_path / "cache"))
    assert loaded.flow.name == "etl"
    assert sorted(p for p, _ in loaded.closure) == CLOSURE_FILES
    # the root (stdlib and 'gitflows' candidates), the script's folder, and the package it imports from
    assert sorted(f for k, f in host.requests if k == "list") == ["", "flows", "flows/lib"]
    assert kinds(host) == {"list": 3, "read": 5}  # no resolve: a full SHA is used as is


def test_a_batching_host_pays_one_request_per_level_of_imports(tmp_path):
    host = MemoryHost(repository(5_000), batch=True)
    load(host, "flows/etl.py", SHA, "etl", cache=Cache(tmp_path / "cache"))
    batches = [f.split(",") for k, f in host.requests if k == "read_many"]
    assert batches == [["flows/etl.py"], sorted(["flows/lib/helpers.py", "flows/lib/__init__.py", "flows/lib/fmt.py",
                                                 "flows/consts.py"], key=["flows/lib/helpers.py", "flows/lib/__init__.py",
                                                                           "flows/lib/fmt.py", "flows/consts.py"].index)]
    assert kinds(host) == {"list": 3, "read_many": 2}


def test_a_registered_closure_costs_its_reads_and_a_warm_load_costs_nothing(tmp_path):
    files = repository(5_000)
    cache = Cache(tmp_path / "cache")
    first = load(MemoryHost(files), "flows/etl.py", SHA, "etl", cache=Cache(tmp_path / "discover"))
    host = MemoryHost(files, batch=True)
    load(host, "flows/etl.py", SHA, "etl", cache=cache, expected=first.closure)
    assert kinds(host) == {"read_many": 1}  # no listing: the ids are known
    again = MemoryHost(files)
    assert load(again, "flows/etl.py", SHA, "etl", cache=cache, expected=first.closure).flow.name == "etl"
    assert again.requests == []


def test_a_folder_listed_in_part_is_not_trusted_for_absence(tmp_path):
    """GitHub lists at most 1,000 entries of a folder: a module past that limit is still found."""
    files = repository(100)
    for i in range(30):
        files[f"flows/a{i:02}.py"] = b"A = 1\n"  # sorts before consts.py and etl.py
    host = MemoryHost(files, folder_limit=10)
    loaded = load(host, "flows/etl.py", SHA, "etl", cache=Cache(tmp_path / "cache"))
    assert "flows/consts.py" in dict(loaded.closure)
    # json/os/gitflows are looked for in the partly listed flows/ by reading: absent there, not in the closure
    assert "flows/os.py" not in dict(loaded.closure)


def test_a_missing_script_names_the_python_files_beside_it_without_listing_the_repository(tmp_path):
    host = MemoryHost(repository(5_000))
    with pytest.raises(PathNotFoundError) as err:
        load(host, "flows/etl2.py", SHA, "etl", cache=Cache(tmp_path / "cache"))
    assert "flows/etl2.py does not exist at commit" in str(err.value) and "flows/etl.py" in str(err.value)
    assert sorted(f for k, f in host.requests if k == "list") == ["", "flows"]


def test_content_that_does_not_match_the_listing_is_refused(tmp_path):
    host = MemoryHost(repository(100), serve={"flows/consts.py": b"FACTOR = 666\n"})
    with pytest.raises(IntegrityError, match="flows/consts.py at commit .* the host's listing says"):
        load(host, "flows/etl.py", SHA, "etl", cache=Cache(tmp_path / "cache"))


def test_a_missing_commit_is_a_ref_error_not_a_missing_path(tmp_path):
    with pytest.raises(RefNotFoundError):
        load(MemoryHost(repository(100)), "flows/etl.py", "2" * 40, "etl", cache=Cache(tmp_path / "cache"))


def test_listings_stop_at_folders_that_do_not_exist(tmp_path):
    """Import candidates such as flows/pandas/__init__.py cost nothing once flows/ has no pandas folder."""
    files = repository(100)
    files["flows/etl.py"] = (FLOW["flows/etl.py"] + "\ndef later():\n    import pandas.io.sql\n").encode()
    host = MemoryHost(files)
    load(host, "flows/etl.py", SHA, "etl", cache=Cache(tmp_path / "cache"))
    assert sorted(f for k, f in host.requests if k == "list") == ["", "flows", "flows/lib"]


@pytest.mark.parametrize("answer", [b"", b"garbage that is not pkt-line", b"0032want " + b"a" * 40,
                                    b"000dpackfile\n0000", b"0014unknown-section\n0000"])
def test_a_smart_http_answer_that_is_not_a_packfile_is_not_understood(answer):
    """Cut off, garbled or section-less answers make the Git host fall back to the negotiated fetch."""
    from gitflows.hosts.smart_http import NotUnderstood, parse_fetch_response

    with pytest.raises(NotUnderstood):
        parse_fetch_response(answer)


def test_a_smart_http_error_line_is_the_servers_refusal():
    from gitflows.hosts.smart_http import FetchFailed, parse_fetch_response, pkt

    with pytest.raises(FetchFailed, match="not our ref"):
        parse_fetch_response(pkt(b"ERR upload-pack: not our ref 1234\n") + b"0000")
