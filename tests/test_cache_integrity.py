"""Issue 12, "Cache and integrity": what the cache lets a load run, what a local pickle may be, prune
against loads in flight, a full disk.

Loads go through a real repository storage against the fake GitHub API (tests/fakes/github_api.py),
which answers from a real git repository.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gitflows import Flow, task
from gitflows.cache import Cache, CacheError
from gitflows.errors import ConfigurationError, IntegrityError, ScriptError
from gitflows.loader import load
from gitflows.storage import GitHub, Local, from_dict
from tests.conftest import run_cli
from tests.fakes.github_api import FakeGitHub
from tests.fakes.gitrepo import GitRepo
from tests.hosts.conftest import fast_retries, rsps  # noqa: F401

BASE = "http://127.0.0.1:8772/api/v3"
FLOW = textwrap.dedent("""\
    from gitflows import Flow, task
    from helper import value

    @task
    def where():
        return value()

    with Flow('etl') as flow:
        where()
""")
HELPER = "def value():\n    return 'original'\n"
EVIL = b"def value():\n    return 'altered'\n"


@pytest.fixture
def repo(tmp_path):
    r = GitRepo(tmp_path / "source", default_branch="main")
    r.v1 = r.commit({"flow.py": FLOW, "helper.py": HELPER}, "v1")
    return r


@pytest.fixture
def api(rsps, repo):  # noqa: F811
    return FakeGitHub(rsps, repo, full_name="acme/flows", base=BASE)


def storage(repo, **kwargs) -> GitHub:
    return GitHub(repo="acme/flows", path="flow.py", base_url=BASE, **kwargs)


def cached(name: str) -> list[Path]:
    return sorted((Cache().root / "trees").rglob(name))


def result(flow: Flow) -> str:
    return flow.run().results["where"]


# -- 1. a warm load checks the tree ---------------------------------------------------------------------------

@pytest.mark.parametrize("registered", [False, True])
def test_a_cached_file_edited_on_disk_is_never_run(api, repo, caplog, registered):
    s = storage(repo, ref=repo.v1)
    if registered:  # an agent's load: the registered closure
        s.add_flow(Flow("etl"))
        s = from_dict(s.build().serialize())
    assert result(s.get_flow("etl")) == "original"
    [helper] = cached("helper.py")
    helper.write_bytes(EVIL)
    api.requests.clear()
    caplog.set_level(logging.WARNING)
    assert result(s.get_flow("etl")) == "original"
    assert "helper.py" in caplog.text and "changed on disk" in caplog.text
    assert api.requests == []  # rebuilt from the verified blobs in the cache: no request
    assert cached("helper.py")[0].read_bytes() == HELPER.encode()
    caplog.clear()
    assert result(s.get_flow("etl")) == "original" and caplog.text == ""  # intact again: silent


def test_an_edited_tree_without_cached_blobs_is_refetched_and_verified(api, repo, caplog):
    s = storage(repo, ref=repo.v1)
    assert result(s.get_flow("etl")) == "original"
    cached("helper.py")[0].write_bytes(EVIL)
    for blob in (Cache().root / "blobs").rglob("*"):
        if blob.is_file():
            blob.unlink()
    caplog.set_level(logging.WARNING)
    assert result(s.get_flow("etl")) == "original"
    assert "helper.py" in caplog.text
    assert any("/git/blobs/" in p or "/contents/" in p for _, p in api.requests)


def test_a_file_planted_in_a_cached_tree_is_never_imported(api, repo, caplog):
    s = storage(repo, ref=repo.v1)
    assert result(s.get_flow("etl")) == "original"
    [flow_py] = cached("flow.py")
    (flow_py.parent / "helper").mkdir()  # a package shadows helper.py on import
    (flow_py.parent / "helper" / "__init__.py").write_bytes(EVIL)
    caplog.set_level(logging.WARNING)
    assert result(s.get_flow("etl")) == "original"
    assert "helper/__init__.py" in caplog.text
    assert not (cached("flow.py")[0].parent / "helper").exists()
    assert cached("__pycache__") == []  # imports leave no bytecode in a verified tree


def test_build_records_the_true_blob_ids_whatever_the_cached_manifest_says(api, repo):
    s = storage(repo, ref=repo.v1)
    assert result(s.get_flow("etl")) == "original"  # leaves a manifest behind
    evil_id = Cache().put_blob(EVIL)  # an attacker's blob, valid under its own id
    [manifest] = (Cache().root / "docs").rglob("*.json")
    doc = json.loads(manifest.read_text())
    doc["closure"] = [[p, evil_id if p == "helper.py" else b] for p, b in doc["closure"]]
    manifest.write_text(json.dumps(doc))
    truth = {p: repo.blob_at(repo.v1, p)[0] for p in ("flow.py", "helper.py")}
    loaded = load(s.make_host(), "flow.py", repo.v1, "etl", from_host=True)
    assert dict(loaded.closure) == truth
    assert result(loaded.flow) == "original"
    # build() records what the host says, not the tampered manifest
    s.add_flow(Flow("etl"))
    s.build()
    assert dict(map(tuple, s.serialize()["closures"]["etl"])) == truth


# -- 2. a local pickle is checked against the sha256 recorded when it was written ------------------------------

@task
def one():
    return 1


@task
def two():
    return 2


def test_a_swapped_local_pickle_is_refused_before_unpickling(tmp_path):
    first = Local(directory=str(tmp_path / "flows"), add_default_labels=False)
    with Flow("etl") as etl:
        one()
    location = first.add_flow(etl)
    data = first.serialize()
    assert set(data["digests"]) == {"etl"}
    other = Local(directory=str(tmp_path / "elsewhere"), add_default_labels=False)
    with Flow("etl") as impostor:  # a valid gitflows pickle of another flow with the same name
        two()
    Path(location).write_bytes(Path(other.add_flow(impostor)).read_bytes())
    for get in (lambda s: s.get_flow("etl"), lambda s: s.get_flow()):
        with pytest.raises(IntegrityError) as err:
            get(from_dict(json.loads(json.dumps(data))))
        assert str(err.value).startswith(f"pickled flow {location}: content sha256 ")
        assert "does not match the recorded" in str(err.value)
    assert from_dict(other.serialize()).get_flow("etl").run().results["two"] == 2  # its own record: fine


# -- 3. prune against loads in flight; cache I/O errors --------------------------------------------------------

LOADER = textwrap.dedent("""\
    import sys, time
    import responses
    from gitflows.storage import GitHub
    from tests.fakes.github_api import FakeGitHub
    from tests.fakes.gitrepo import GitRepo

    repo = GitRepo(sys.argv[1])
    sha, until, loads = sys.argv[2], time.time() + float(sys.argv[3]), 0
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeGitHub(rsps, repo, full_name="acme/flows", base=sys.argv[4])
        while time.time() < until:
            flow = GitHub(repo="acme/flows", path="flow.py", ref=sha, base_url=sys.argv[4]).get_flow("etl")
            assert flow.run().results["where"] == "original"
            loads += 1
    print(loads)
""")
PRUNER = textwrap.dedent("""\
    import sys, time
    from gitflows.cache import Cache
    until, rounds = time.time() + float(sys.argv[1]), 0
    while time.time() < until:
        Cache().prune(everything=True)
        rounds += 1
    print(rounds)
""")


def test_prune_all_in_a_loop_never_breaks_loads_in_flight(repo, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    seconds = "2"
    procs = [subprocess.Popen([sys.executable, "-c", LOADER, str(repo.path), repo.v1, seconds, BASE], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    procs.append(subprocess.Popen([sys.executable, "-c", PRUNER, "3"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
        assert int(out.strip()) > 0  # each loop really ran (the pruner outlasts the loaders)
    # a young temporary file (a writer at work) survives even --all; an old one (a crashed writer) goes
    blobs = Cache().root / "blobs" / "ab"
    blobs.mkdir(parents=True, exist_ok=True)
    young, old = blobs / ".tmp-young", blobs / ".tmp-old"
    young.write_bytes(b"x")
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    Cache().prune(everything=True)
    assert young.exists() and not old.exists()


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A 64 KiB tmpfs as the cache folder: a real full file system."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    monkeypatch.setenv("GITFLOWS_CACHE_DIR", str(mount / "cache"))
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_is_one_line_naming_the_cache(api, repo, small_disk):
    big = repo.commit({"data.py": "BLOB = " + repr("x" * 200_000) + "\n",
                       "flow.py": FLOW.replace("from helper import value", "from helper import value\nimport data")})
    with pytest.raises(CacheError) as err:
        storage(repo, ref=big).get_flow("etl")
    text = str(err.value)
    assert "\n" not in text and str(small_disk / "cache") in text
    assert "No space left on device (ENOSPC)" in text and "gitflows cache prune" in text
    leftovers = [p for p in small_disk.rglob(".tmp-*")]
    assert leftovers == []  # the failed writer cleaned up after itself
    # what fits still loads from the same cache
    assert result(storage(repo, ref=repo.v1).get_flow("etl")) == "original"


def test_prune_all_keeps_a_tree_a_load_holds(api, repo):
    assert result(storage(repo, ref=repo.v1).get_flow("etl")) == "original"
    tree = cached("flow.py")[0].parent
    with Cache().using(tree):  # what load() holds from lookup until it returns
        out = run_cli("cache", "prune", "--all")
    assert out.returncode == 0, out.stderr
    assert "1 tree(s) in use kept" in out.stdout and (tree / "flow.py").is_file()
    assert "0 tree(s) in use kept" in run_cli("cache", "prune", "--all").stdout and not tree.exists()


# -- 4. bounds on the closure walk -------------------------------------------------------------------------------

def chain(depth: int) -> dict[str, str]:
    """flow.py imports m0, m0 imports m1, ... m<depth-1>: a chain of sibling imports *depth* deep."""
    files = {f"m{i}.py": f"import m{i + 1}\n" for i in range(depth - 1)}
    files[f"m{depth - 1}.py"] = "LAST = True\n"
    files["flow.py"] = FLOW.replace("from helper import value", "from helper import value\nimport m0")
    return files


def test_a_deep_import_chain_is_one_line_and_fast(api, repo):
    deep = repo.commit(chain(300), "300-deep chain")  # 2,000 behaves the same; writing the repo is slower
    start = time.monotonic()
    with pytest.raises(ScriptError) as err:
        storage(repo, ref=deep).get_flow("etl")
    assert time.monotonic() - start < 5  # stops at level 51: one request per level, then the error
    text = str(err.value)
    assert "\n" not in text and "flow.py at commit" in text and deep in text
    assert "nest deeper than 50 levels" in text and "GITFLOWS_MAX_IMPORT_DEPTH" in text
    shallow = repo.commit(chain(40), "40-deep chain")
    assert result(storage(repo, ref=shallow).get_flow("etl")) == "original"


def test_the_closure_size_is_bounded(api, repo, monkeypatch):
    monkeypatch.setenv("GITFLOWS_MAX_CLOSURE_BYTES", "150")
    with pytest.raises(ScriptError, match=r"the files it needs exceed 150 bytes \(at helper.py\); set "
                                          "GITFLOWS_MAX_CLOSURE_BYTES"):
        storage(repo, ref=repo.v1).get_flow("etl")
    monkeypatch.setenv("GITFLOWS_MAX_CLOSURE_BYTES", "lots")
    with pytest.raises(ConfigurationError, match="GITFLOWS_MAX_CLOSURE_BYTES='lots' is not a positive whole number"):
        storage(repo, ref=repo.v1).get_flow("etl")


def test_oversized_repo_names_fit_in_the_cache(rsps, repo):  # noqa: F811
    name = "acme/" + "r" * 300  # a file system allows 255 bytes per name
    FakeGitHub(rsps, repo, full_name=name, base=BASE)
    s = GitHub(repo=name, path="flow.py", base_url=BASE, ref=repo.v1)
    assert result(s.get_flow("etl")) == "original"
    assert result(s.get_flow("etl")) == "original"  # warm
    [tree_file] = cached("flow.py")
    parts = tree_file.relative_to(Cache().root).parts
    assert max(len(p) for p in parts) <= 100 and any(p.startswith("r" * 48 + "~") for p in parts)
    deep = Cache().materialise(tuple(f"group{i}" for i in range(500)), {"a.py": b"a"})  # GitLab-style nesting
    assert (deep / "a.py").read_bytes() == b"a" and len(str(deep.relative_to(Cache().root))) < 200
