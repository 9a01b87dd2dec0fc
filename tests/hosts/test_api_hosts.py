"""The loader's contract, the same for every API host: GitHub, GitLab, Bitbucket Server and Cloud."""

from __future__ import annotations

import re
import shutil

import pytest

from gitflows import Flow
from gitflows.cache import Cache
from gitflows.errors import (
    AuthenticationError,
    FlowNotFoundError,
    IntegrityError,
    PathNotFoundError,
    RateLimitedError,
    RefNotFoundError,
    RemoteError,
    RepoNotFoundError,
)
from gitflows.storage import from_dict

from .backends import NAMES, make_backend
from .conftest import TOKEN, assert_secret_hidden

V2_FMT = {"flows/lib/fmt.py": "def label(rows):\n    return 'v2:' + ','.join(map(str, rows))\n"}


@pytest.fixture(params=NAMES)
def backend(request, rsps, source, monkeypatch):
    return make_backend(request.param, rsps, source, monkeypatch)


def clear_cache():
    shutil.rmtree(Cache().root, ignore_errors=True)


def test_flow_with_sibling_modules_loads_at_a_branch(backend, source):
    flow = backend.make(ref="trunk").get_flow(flow_name="etl")
    assert flow.run().results["transform"] == "v1:0,10,20"
    assert all(TOKEN not in path for _, path in backend.fake.requests)


# a cold load of a pinned script with 4 sibling files in 2 folders: GraphQL hosts read one level of imports per
# request; Bitbucket Server over git fetches the commit's trees, then the script's blob, then the level of
# imports' blobs; REST-only hosts list the 3 folders import resolution looks into, then read the script and the
# level of imports: Bitbucket Server in one archive (after one git request refused), Cloud one file per request
COLD_PINNED = {"github": 2, "gitlab": 2, "bitbucket-server": 3, "bitbucket-server-rest": 6, "bitbucket-cloud": 8}


def test_a_cold_pinned_load_costs_what_the_host_allows(backend, source):
    if hasattr(backend.fake, "page_cap"):  # page as the real APIs do at most (the fixtures page small to test paging)
        backend.fake.page_cap = {"gitlab": 100, "bitbucket-server": 1000, "bitbucket-server-rest": 1000,
                                 "bitbucket-cloud": 100}[backend.name]
    backend.fake.requests.clear()
    flow = backend.make(ref=source.v1).get_flow(flow_name="etl")
    assert flow.run().results["transform"] == "v1:0,10,20"
    assert len(backend.fake.requests) == COLD_PINNED[backend.name], backend.fake.requests


@pytest.fixture(params=["bitbucket-server-rest", "bitbucket-cloud"])
def rest_backend(request, rsps, source, monkeypatch):
    """The hosts without GraphQL, which list folders."""
    return make_backend(request.param, rsps, source, monkeypatch)


def test_a_folder_too_big_for_one_page_is_probed_not_paged(rest_backend, source):
    """REST hosts list one page of a folder; in a folder with more, the candidate paths are read directly: the
    cost stays a handful of requests, not the folder's size."""
    backend = rest_backend
    big = {f"flows/m{i:04}.py": f"X = {i}\n" for i in range(400)}
    sha = source.commit(big, "400 modules beside the flow")
    backend.fake.page_cap = 25  # 16 pages of flows/ at this size
    backend.fake.requests.clear()
    assert backend.make(ref=sha).get_flow(flow_name="etl").run().results["transform"] == "v1:0,10,20"
    assert len(backend.fake.requests) <= 20, (len(backend.fake.requests), backend.fake.requests)


def test_default_branch_comes_from_the_host(backend, source):
    source.commit({"flows/consts.py": "FACTOR = 2\n"}, branch="master")  # a decoy 'master'
    flow = backend.make().get_flow(flow_name="etl")
    assert flow.run().results["transform"] == "v1:0,10,20"


def test_tag_and_commit_refs(backend, source):
    source.tag("release-1")
    v2 = source.commit(V2_FMT, "v2")
    assert backend.make(ref="release-1").get_flow(flow_name="etl").run().results["transform"].startswith("v1:")
    assert backend.make(ref=v2).get_flow(flow_name="etl").run().results["transform"].startswith("v2:")


def test_build_pins_the_sha_so_a_moved_branch_changes_nothing(backend, source):
    storage = backend.make(ref="trunk")
    storage.add_flow(Flow("etl"))
    storage.build()
    data = storage.serialize()
    assert data["sha"] == source.v1 and data["ref"] == "trunk"
    assert {p for p, _ in data["closures"]["etl"]} == {"flows/etl.py", "flows/lib/__init__.py", "flows/lib/helpers.py",
                                                        "flows/lib/fmt.py", "flows/consts.py"}
    source.commit(V2_FMT, "v2 on trunk")
    clear_cache()  # another machine: nothing cached
    backend.fake.requests.clear()
    flow = from_dict(data).get_flow()
    assert flow.run().results["transform"] == "v1:0,10,20"
    assert backend.resolves() == 0  # a pinned SHA never asks what the branch points to
    # the recorded closure and nothing else: one GraphQL request, git fetch or archive (after the git request a
    # server without usable git refuses), or one read per file (Bitbucket Cloud)
    expected = {"bitbucket-cloud": 5, "bitbucket-server-rest": 2}.get(backend.name, 1)
    assert len(backend.fake.requests) == expected, backend.fake.requests
    assert backend.name != "bitbucket-cloud" or backend.reads() == 5


def test_a_warm_load_of_a_branch_costs_one_ref_lookup(backend, source):
    """Tracking a branch: what it points to is asked every load (one request: the hosts page as the real APIs do at
    most), the files come from the cache; when the branch moves, only what changed is read."""
    if hasattr(backend.fake, "page_cap"):
        backend.fake.page_cap = 100
    backend.make(ref="trunk").get_flow(flow_name="etl")
    backend.fake.requests.clear()
    assert backend.make(ref="trunk").get_flow(flow_name="etl").run().results["transform"] == "v1:0,10,20"
    assert len(backend.fake.requests) == 1 and backend.resolves() == 1, backend.fake.requests
    source.commit(V2_FMT, "v2 on trunk")
    backend.fake.requests.clear()
    assert backend.make(ref="trunk").get_flow(flow_name="etl").run().results["transform"].startswith("v2:")
    assert backend.resolves() == 1


def test_warm_load_makes_no_request_even_when_the_host_is_gone(backend, source, rsps):
    storage = backend.make(ref=source.v1)
    storage.get_flow(flow_name="etl")
    backend.fake.requests.clear()
    rsps.reset()
    assert storage.get_flow(flow_name="etl").run().results["transform"] == "v1:0,10,20"
    assert backend.fake.requests == []


def test_two_shas_load_side_by_side(backend, source):
    v2 = source.commit(V2_FMT, "v2")
    assert backend.make(ref=source.v1).get_flow(flow_name="etl").run().results["transform"].startswith("v1:")
    assert backend.make(ref=v2).get_flow(flow_name="etl").run().results["transform"].startswith("v2:")


def test_changed_content_is_refused_against_the_registered_record(backend, source):
    storage = backend.make(ref="trunk")
    storage.add_flow(Flow("etl"))
    storage.build()
    data = storage.serialize()
    clear_cache()
    oid, _ = source.blob_at(source.v1, "flows/lib/helpers.py")
    if backend.name != "bitbucket-cloud":  # read in batches (GraphQL, archive): the server answers other bytes there
        backend.fake.tampered[oid] = b"evil\n"
    else:
        status, payload = backend.tamper(oid)
        backend.fake.fail(backend.read + "flows/lib/helpers.py", status, payload, times=5)
    with pytest.raises(IntegrityError) as err:
        from_dict(data).get_flow()
    text = str(err.value)
    assert "flows/lib/helpers.py" in text and source.v1 in text and "acme" in text.lower()


def test_several_flows_need_a_name(backend, source):
    with pytest.raises(FlowNotFoundError, match=r"Multiple flows found in .* \('etl', 'other'\)"):
        backend.make(ref=source.v1).get_flow()


def test_bad_credentials(backend, monkeypatch, debug_logs):
    monkeypatch.setenv(backend.secret_env, "wrong-" + TOKEN[:6])
    storage = backend.make(ref="trunk")
    with pytest.raises(AuthenticationError) as err:
        storage.get_flow(flow_name="etl")
    assert "401" in str(err.value) and backend.secret_env in str(err.value)
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs, storage=storage)
    assert_secret_hidden("wrong-" + TOKEN[:6], error=err.value, caplog=debug_logs, storage=storage)


def test_rate_limit_that_resets_later_than_the_bound(backend, debug_logs):
    status, headers, payload = backend.rate_limited
    backend.fake.fail(backend.resolve, status, payload, headers, times=20)
    storage = backend.make(ref="trunk")
    with pytest.raises(RateLimitedError, match="rate limit exceeded .* resets at") as err:
        storage.get_flow(flow_name="etl")
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs, storage=storage)


def test_server_errors_are_retried_with_backoff(backend, debug_logs):
    status, payload = backend.server_error
    backend.fake.fail(backend.listing, status, payload, times=2)
    assert backend.make(ref="trunk").get_flow(flow_name="etl").name == "etl"
    clear_cache()
    backend.fake.fail(backend.listing, status, payload, times=50)
    storage = backend.make(ref="trunk")
    with pytest.raises(RemoteError, match=f"server kept failing after 4 attempts \\(HTTP {status}") as err:
        storage.get_flow(flow_name="etl")
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs, storage=storage)


def test_unreachable_host(backend, rsps, debug_logs):
    rsps.reset()
    storage = backend.make(ref="trunk")
    with pytest.raises(RemoteError, match="no answer") as err:
        storage.get_flow(flow_name="etl")
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs, storage=storage)


def test_not_found_repo_ref_and_path_are_told_apart(backend, source, debug_logs):
    with pytest.raises(RepoNotFoundError) as err:
        backend.make(repo="missing-repo", ref="trunk").get_flow(flow_name="etl")
    assert "missing-repo" in str(err.value)
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs)
    with pytest.raises(RefNotFoundError, match="'no-such-branch'") as err:
        backend.make(ref="no-such-branch").get_flow(flow_name="etl")
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs)
    with pytest.raises(PathNotFoundError, match=re.escape(f"flows/missing.py does not exist at commit {source.v1}")) as err:
        backend.make(path="flows/missing.py", ref="trunk").get_flow(flow_name="etl")
    assert "flows/etl.py" in str(err.value)  # names the flow files that do exist there
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs)


def test_warm_load_imports_no_http_library(backend, source, tmp_path):
    """A pinned flow already in the cache loads in a fresh process without importing any client library."""
    import json
    import os
    import subprocess
    import sys

    storage = backend.make(ref="trunk")
    storage.add_flow(Flow("etl"))
    storage.build()
    spec = tmp_path / "storage.json"
    spec.write_text(json.dumps(storage.serialize()))
    code = (
        "import json, sys\n"
        "from gitflows.storage import from_dict\n"
        f"flow = from_dict(json.load(open({str(spec)!r}))).get_flow()\n"
        "assert flow.run().results['transform'] == 'v1:0,10,20'\n"
        "heavy = ('github', 'gitlab', 'atlassian', 'requests', 'urllib3', 'boto3', 'botocore')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    env = dict(os.environ)
    env.pop(backend.secret_env, None)  # no secret needed either
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("status", [401, 403, 404, 418, 500])
def test_a_server_echoing_the_token_never_has_it_carried_by_the_error(backend, debug_logs, status):
    """Servers (and proxies in front of them) echo requests in error bodies: the token raw, in a URL, in
    the Basic header. Neither the error, its args and attributes, nor any exception chained to it
    (suppressed context included) carries it."""
    import base64

    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    echo = (f"bad request: Authorization: Bearer {TOKEN}; Authorization: Basic {basic}; "
            f"url=https://127.0.0.1/api?access_token={TOKEN}")
    backend.fake.fail(backend.resolve, status, {"message": echo, "error": echo}, times=50)
    storage = backend.make(ref="trunk")
    with pytest.raises(Exception) as err:
        storage.get_flow(flow_name="etl")
    assert str(status) in str(err.value) or "no answer" in str(err.value)
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs, storage=storage)


def test_a_commit_not_on_the_host_is_not_visible(backend, source):
    """What confirms a pending registration: the commit must really be there (listings are lazy, so this
    must make a request)."""
    from gitflows.register import visible_on_remote
    from gitflows.registry import FlowVersion

    storage = backend.make(ref=source.v1)
    data = storage.serialize()

    def version(sha):
        return FlowVersion(name="etl", version=1, storage=data, repo="acme/flows", path="flows/etl.py",
                           requested_ref=None, sha=sha, closure=[], fingerprint="x", labels=[], state="pending",
                           registered_at=0.0)

    assert visible_on_remote(version(source.v1))
    assert not visible_on_remote(version("0123456789abcdef0123456789abcdef01234567"))


def test_a_storage_naming_a_missing_repository_says_so_instead_of_waiting(backend, source, tmp_path):
    """Registered as pending against a repository that does not exist: confirmation and the agent give the
    real cause at once, instead of 'commit not on the remote yet' until a grace period ends."""
    from gitflows.agent import Agent
    from gitflows.register import confirm_pending
    from gitflows.registry import FlowVersion, open_registry

    data = backend.make(repo="missing-repo", ref=source.v1).serialize()
    url = str(tmp_path / "registry.db")
    reg = open_registry(url)
    reg.register(FlowVersion(name="etl", version=0, storage=data, repo="acme/missing-repo", path="flows/etl.py",
                             requested_ref=None, sha=source.v1, closure=[], fingerprint="x", labels=[],
                             state="pending", registered_at=0.0))
    [(version, status)] = confirm_pending(reg)
    assert not status.visible and status.final
    assert "missing-repo" in status.reason and "not on the remote yet" not in status.reason
    run = reg.create_run("etl")
    done = dict(Agent(url, poll=0.05, confirm_grace=600).run(once=True))
    assert done[run.id] == "failed"
    error = reg.get_run(run.id).error
    assert "cannot be run" in error and "missing-repo" in error


def test_confirming_against_a_missing_repository_exits_1_with_the_cause(tmp_path, source):
    from gitflows.registry import FlowVersion, open_registry

    from ..conftest import run_cli
    from ..fakes.github_api import FakeGitHub
    from ..fakes.serve import NO_MOCK, serve

    fake, server = serve(lambda base: FakeGitHub(NO_MOCK, source, base=base + "/api/v3", token=TOKEN))
    try:
        from gitflows.storage.github import GitHub

        data = GitHub(repo="acme/nope", path="flows/etl.py", ref=source.v1, access_token_secret="GH_TOKEN",
                      base_url=fake.base).serialize()
        url = str(tmp_path / "registry.db")
        open_registry(url).register(FlowVersion(
            name="etl", version=0, storage=data, repo="acme/nope", path="flows/etl.py", requested_ref=None,
            sha=source.v1, closure=[], fingerprint="x", labels=[], state="pending", registered_at=0.0))
        result = run_cli("register", "--confirm-pending", env={"GITFLOWS_REGISTRY": url, "GH_TOKEN": TOKEN})
    finally:
        server.shutdown()
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "etl: version 1 cannot be confirmed" in result.stderr and "acme/nope" in result.stderr
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["github", "gitlab"])
def test_a_host_without_graphql_falls_back_to_rest(name, rsps, source, monkeypatch):
    backend = make_backend(name, rsps, source, monkeypatch)
    backend.fake.graphql = False
    assert backend.make(ref=source.v1).get_flow(flow_name="etl").run().results["transform"] == "v1:0,10,20"
    assert sum(1 for _, p in backend.fake.requests if p.endswith("/graphql")) == 1


def registered_on_bitbucket_server(rsps, source, monkeypatch):
    """The Bitbucket Server fake and the serialized storage of etl built on it (closure recorded), with an empty
    cache, as on another machine."""
    backend = make_backend("bitbucket-server-rest", rsps, source, monkeypatch)
    storage = backend.make(ref="trunk")
    storage.add_flow(Flow("etl"))
    storage.build()
    data = storage.serialize()
    clear_cache()
    return backend, data


def _archives(backend) -> int:
    return sum(1 for _, p in backend.fake.requests if p.split("?")[0].endswith("/archive"))


@pytest.mark.parametrize("refusal", [404, 403])
def test_bitbucket_server_refusing_archives_reads_one_by_one_after_one_refused_archive(rsps, source, monkeypatch,
                                                                                       refusal):
    """A server without the archive endpoint (404 there: before 5.1), or refusing archives (403: a proxy, a
    plugin): the files are read one by one, and the host stops asking for archives once one-by-one reads found
    every file the archive was refused for."""
    backend = make_backend("bitbucket-server-rest", rsps, source, monkeypatch)
    backend.fake.page_cap = 1000
    if refusal == 404:
        backend.fake.archive = False
    else:
        backend.fake.fail(r"/archive$", 403, {"errors": [{"context": None, "message": "Archive downloads are disabled",
                                                          "exceptionName": None}]}, times=10)
    storage = backend.make(ref="trunk")
    storage.add_flow(Flow("etl"))
    storage.build()  # a discovered closure: the level of imports is the first batch
    assert _archives(backend) == 1 and backend.reads() == 5, backend.fake.requests
    clear_cache()
    backend.fake.requests.clear()
    assert from_dict(storage.serialize()).get_flow().run().results["transform"] == "v1:0,10,20"
    assert _archives(backend) == 1 and backend.reads() == 5  # a new host object asks once more, then reads


@pytest.mark.parametrize("answer", [b"", b"<html>proxy error</html>", b"\x00" * 1024, "truncated"])
def test_bitbucket_server_garbled_archive_is_read_again_file_by_file(rsps, source, monkeypatch, answer):
    """An archive that is no tar (a proxy's page, zeros, cut short): the files it should have held are read one by
    one and the flow loads, verified as always."""
    backend, data = registered_on_bitbucket_server(rsps, source, monkeypatch)
    if answer == "truncated":
        files = {p: source.blob_at(source.v1, p)[1] for p, _ in data["closures"]["etl"]}
        from tests.fakes.bitbucket_api import _tar

        answer = _tar(source.v1, files)[:1536]  # headers and the first file or so: the rest cut off
    backend.fake.requests.clear()
    backend.fake.fail(r"/archive$", 200, answer.decode("latin-1"), {"Content-Type": "application/x-tar"})
    assert from_dict(data).get_flow().run().results["transform"] == "v1:0,10,20"
    assert _archives(backend) == 1 and 1 <= backend.reads() <= 5, backend.fake.requests


def test_bitbucket_server_archive_with_other_paths_or_links_gives_only_what_was_asked(rsps, source, monkeypatch):
    """A hostile archive holding a path that escapes, a symlink named like a wanted file, and files not asked for:
    none of them is used; the wanted file comes from a one-by-one read and is verified."""
    import io
    import tarfile

    backend, data = registered_on_bitbucket_server(rsps, source, monkeypatch)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, payload in [("../../escape.py", b"X = 1\n"), ("flows/unasked.py", b"Y = 2\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        link = tarfile.TarInfo("flows/consts.py")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    backend.fake.fail(r"/archive$", 200, out.getvalue().decode("latin-1"), {"Content-Type": "application/x-tar"})
    backend.fake.requests.clear()
    assert from_dict(data).get_flow().run().results["transform"] == "v1:0,10,20"
    assert backend.reads() == 5  # every wanted file read again on its own
    assert not (Cache().root.parent / "escape.py").exists()


def test_untar_keeps_only_the_regular_files_asked_for():
    import io
    import tarfile

    from gitflows.hosts.bitbucket import _untar

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, payload in [("flows/a.py", b"A\n"), ("../x.py", b"X\n"), ("flows/b.py", b"B\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        link = tarfile.TarInfo("flows/c.py")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    archive = out.getvalue()
    assert _untar(archive, {"flows/a.py", "../x.py", "flows/c.py"}) == {"flows/a.py": b"A\n", "../x.py": b"X\n"}
    assert _untar(archive, {"flows/b.py"}) == {"flows/b.py": b"B\n"}
    assert _untar(archive[:700], {"flows/a.py", "flows/b.py"}) == {"flows/a.py": b"A\n"}  # cut short: what came whole
    assert _untar(b"garbage", {"flows/a.py"}) == {}
