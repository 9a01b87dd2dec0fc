"""Bitbucket Server reads over git smart HTTP (the clone URL, same bearer token), and falls back to its REST API
whenever git cannot answer: partial clones off, protocol v0, git over HTTP off, a refused token, a broken or
cut-off answer. Whatever the path, the flow that loads is the one at the commit, verified."""

from __future__ import annotations

import logging
import shutil

import pytest

from gitflows import Flow
from gitflows.cache import Cache
from gitflows.errors import IntegrityError
from gitflows.storage import from_dict

from ..fakes.bitbucket_api import FakeBitbucketServer
from ..fakes.serve import NO_MOCK, serve
from .backends import make_backend
from .conftest import TOKEN, assert_secret_hidden


def _git(backend) -> list[str]:
    return [p for _, p in backend.fake.requests if "/scm/" in p]


def _rest(backend) -> list[str]:
    return [p for _, p in backend.fake.requests if p.startswith("/rest/")]


@pytest.fixture
def server(rsps, source, monkeypatch):
    backend = make_backend("bitbucket-server", rsps, source, monkeypatch)
    backend.fake.page_cap = 1000
    return backend


def registered(backend):
    storage = backend.make(ref="trunk")
    storage.add_flow(Flow("etl"))
    storage.build()
    shutil.rmtree(Cache().root, ignore_errors=True)
    backend.fake.requests.clear()
    return storage.serialize()


def test_every_read_goes_over_git_with_the_token_in_a_header_only(server, source, debug_logs):
    storage = server.make(ref=source.v1)
    assert storage.get_flow(flow_name="etl").run().results["transform"] == "v1:0,10,20"
    assert _rest(server) == [] and len(_git(server)) == 3  # the commit's trees, the script, its level of imports
    assert set(server.fake.auth_headers) == {f"Bearer {TOKEN}"}
    assert all(TOKEN not in p for _, p in server.fake.requests)
    assert_secret_hidden(TOKEN, caplog=debug_logs, storage=storage)


def test_a_registered_closure_is_one_git_request(server):
    data = registered(server)
    assert from_dict(data).get_flow().run().results["transform"] == "v1:0,10,20"
    assert [m for m, _ in server.fake.requests] == ["POST"] and _rest(server) == []


def test_a_branch_is_resolved_over_rest_then_read_over_git(server):
    assert server.make(ref="trunk").get_flow(flow_name="etl").run().results["transform"] == "v1:0,10,20"
    assert len(_rest(server)) == 1 and len(_git(server)) == 3, server.fake.requests


@pytest.mark.parametrize("mode", ["v2", "v0", "off", "garbage"])
def test_a_server_whose_git_cannot_answer_is_read_over_rest(server, mode, caplog):
    """Partial clones off (no ``filter``), protocol v0 only, no git over HTTP, a broken answer: one git
    request, then the REST API for the rest of the load, and the same flow."""
    server.fake.git = mode
    caplog.set_level(logging.INFO)
    storage = server.make(ref=server.fake.repo.v1)
    assert storage.get_flow(flow_name="etl").run().results["transform"] == "v1:0,10,20"
    assert len(_git(server)) == 1, server.fake.requests
    assert any("using the REST API from now on" in r.getMessage() for r in caplog.records)


def test_without_partial_clones_a_registered_closure_still_reads_over_git(server):
    """Reading blobs by id needs no filter: only discovery (the commit's trees) does."""
    data = registered(server)
    server.fake.git = "v2"
    assert from_dict(data).get_flow().run().results["transform"] == "v1:0,10,20"
    assert len(server.fake.requests) == 1 and _rest(server) == []


def test_a_token_git_refuses_falls_back_to_rest(server):
    server.fake.fail(r"/git-upload-pack$", 401, "Authentication failed", times=1)
    assert server.make(ref=server.fake.repo.v1).get_flow(flow_name="etl").run().results["transform"] == "v1:0,10,20"
    assert len(_git(server)) == 1 and len(_rest(server)) == 5


def test_a_git_answer_cut_off_mid_pack_is_read_again_over_rest(server):
    data = registered(server)
    real = server.fake.post_upload_pack

    def cut(query):
        status, headers, body = real(query)
        return status, headers, body[: len(body) // 2]

    server.fake.route("POST", "/scm/acme/flows\\.git/git-upload-pack", cut)
    server.fake.routes.insert(0, server.fake.routes.pop())
    assert from_dict(data).get_flow().run().results["transform"] == "v1:0,10,20"
    assert len(_git(server)) == 1 and _rest(server), server.fake.requests


def test_a_corrupt_pack_is_retried_then_read_over_rest(server):
    """A well-framed answer whose packfile is garbage: retried as a transport failure, then REST."""
    data = registered(server)
    server.fake.fail(r"/git-upload-pack$", 200, "000dpackfile\n0015\x01PACK\x00\x00\x00\x02garbage0000",
                     {"Content-Type": "application/x-git-upload-pack-result"}, times=10)
    assert from_dict(data).get_flow().run().results["transform"] == "v1:0,10,20"
    assert len(_git(server)) >= 1 and _rest(server)


def test_a_server_sending_other_bytes_over_git_and_rest_is_refused(server, source):
    data = registered(server)
    oid, _ = source.blob_at(source.v1, "flows/lib/helpers.py")
    server.fake.tampered[oid] = b"evil\n"
    with pytest.raises(IntegrityError, match="flows/lib/helpers.py"):
        from_dict(data).get_flow()


def test_over_real_http_a_cold_pinned_load_is_three_requests_at_any_size(source, monkeypatch, tmp_path):
    """The fake served on a loopback socket (requests and git upload-pack over real HTTP), 2,000 files beside
    the flow: still the commit's trees, the script, its imports."""
    source.commit({f"flows/m{i:04}.py": f"X = {i}\n" for i in range(2000)}, "2,000 modules beside the flow")
    sha = source.rev_parse("HEAD")
    monkeypatch.setenv("BB_TOKEN", TOKEN)
    fake, httpd = serve(lambda base: FakeBitbucketServer(NO_MOCK, source, base=base, token=TOKEN))
    try:
        from gitflows.storage.bitbucket import Bitbucket

        storage = Bitbucket(project="ACME", repo="flows", host=fake.base, path="flows/etl.py", ref=sha,
                            access_token_secret="BB_TOKEN")
        assert storage.get_flow(flow_name="etl").run().results["transform"] == "v1:0,10,20"
        assert [m for m, _ in fake.requests] == ["POST"] * 3, fake.requests
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_git_server_error_is_not_retried_rest_answers_at_once(server):
    server.fake.fail(r"/git-upload-pack$", 503, "Service Unavailable", times=10)
    assert server.make(ref=server.fake.repo.v1).get_flow(flow_name="etl").run().results["transform"] == "v1:0,10,20"
    assert len(_git(server)) == 1 and len(_rest(server)) == 5


def test_a_stalled_git_server_is_given_up_on_within_the_timeout(source, monkeypatch):
    """Git answers nothing (a stalled proxy, a hung server): after GIT_TIMEOUT the load goes on over REST,
    over a real socket."""
    import time

    import gitflows.hosts.bitbucket as bitbucket

    monkeypatch.setattr(bitbucket, "GIT_TIMEOUT", 0.5)
    monkeypatch.setenv("BB_TOKEN", TOKEN)
    fake, httpd = serve(lambda base: FakeBitbucketServer(NO_MOCK, source, base=base, token=TOKEN))
    real = fake.post_upload_pack

    def stall(query):
        time.sleep(3)
        return real(query)

    fake.routes.insert(0, ("POST", __import__("re").compile("^/scm/acme/flows\\.git/git-upload-pack$"), stall))
    try:
        from gitflows.storage.bitbucket import Bitbucket

        storage = Bitbucket(project="ACME", repo="flows", host=fake.base, path="flows/etl.py", ref=source.v1,
                            access_token_secret="BB_TOKEN")
        started = time.monotonic()
        assert storage.get_flow(flow_name="etl").run().results["transform"] == "v1:0,10,20"
        assert time.monotonic() - started < 2.5
        assert sum(1 for _, p in fake.requests if "/scm/" in p) == 1
    finally:
        httpd.shutdown()
        httpd.server_close()
