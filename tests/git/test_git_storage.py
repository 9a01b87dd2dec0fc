"""The Git storage against real servers on 127.0.0.1: smart HTTP (filter on and off), git daemon, sshd."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from gitflows import Flow
from gitflows.cache import Cache
from gitflows.errors import (
    AuthenticationError,
    FlowNotFoundError,
    IntegrityError,
    RefNotFoundError,
    RemoteError,
    RepoNotFoundError,
)
from gitflows.storage import from_dict
from gitflows.storage.git import Git, token_credentials

from .conftest import TOKEN, sync

V2_FMT = {"flows/lib/fmt.py": "def label(rows):\n    return 'v2:' + ','.join(map(str, rows))\n"}


def clear_cache():
    shutil.rmtree(Cache().root, ignore_errors=True)


def test_sibling_modules_at_a_branch(transport, source):
    flow = transport.make(branch_name="trunk", flow_name="etl").get_flow()
    assert flow.run().results["transform"] == "v1:0,10,20"


def test_default_branch_comes_from_the_remote(transport, source, bare):
    source.commit({"flows/consts.py": "FACTOR = 2\n"}, branch="master")  # a decoy 'master'
    sync(source, bare)
    assert transport.make(flow_name="etl").get_flow().run().results["transform"] == "v1:0,10,20"


def test_registered_sha_survives_a_moved_branch_and_a_force_push(transport, source, bare):
    storage = transport.make(branch_name="trunk", flow_name="etl")
    storage.add_flow(Flow("etl"))
    storage.build()
    data = json.loads(json.dumps(storage.serialize()))
    assert data["sha"] == source.v1
    # the branch moves on
    source.commit(V2_FMT, "v2")
    sync(source, bare)
    clear_cache()
    assert from_dict(data).get_flow().run().results["transform"] == "v1:0,10,20"
    # history is rewritten and the old commit garbage-collected on the server
    source.git("reset", "-q", "--hard", source.v1)
    source.git("commit", "-q", "--amend", "-m", "rewritten")
    source.commit(V2_FMT, "v2 again")
    sync(source, bare, prune=True)
    subprocess.run(["git", "-C", str(bare), "reflog", "expire", "--expire=now", "--all"], check=True)
    subprocess.run(["git", "-C", str(bare), "gc", "-q", "--prune=now"], check=True)
    clear_cache()
    try:
        flow = from_dict(data).get_flow()
    except IntegrityError as err:  # the registered files are gone: refused, never replaced
        assert "flows/" in str(err) and source.v1 in str(err)
    else:  # the objects are identical (same blob ids): the registered code, never other code
        assert flow.run().results["transform"] == "v1:0,10,20"


def test_pinned_commit_is_honoured_and_warm_load_needs_no_server(transport, source, bare):
    v2 = source.commit(V2_FMT, "v2")
    sync(source, bare)
    storage = transport.make(commit=source.v1, flow_name="etl")
    assert storage.get_flow().run().results["transform"] == "v1:0,10,20"
    assert transport.make(commit=v2, flow_name="etl").get_flow().run().results["transform"] == "v2:0,10,20"
    shutil.rmtree(bare)  # the server has nothing any more
    assert storage.get_flow().run().results["transform"] == "v1:0,10,20"


def test_flow_name_selects_the_flow(transport, source):
    storage = transport.make(branch_name="trunk")
    assert storage.get_flow("other").name == "other"  # Prefect 1 bug #5503 returned the first flow
    assert transport.make(branch_name="trunk", flow_name="other").get_flow().name == "other"
    with pytest.raises(FlowNotFoundError, match=r"Multiple flows found in .* \('etl', 'other'\)"):
        storage.get_flow()


def test_missing_branch_tag_and_commit_are_named(transport, source):
    with pytest.raises(RefNotFoundError, match="no branch or tag 'nope'"):
        transport.make(branch_name="nope").get_flow("etl")
    with pytest.raises(RefNotFoundError, match="no branch or tag 'v9'"):
        transport.make(tag="v9").get_flow("etl")
    with pytest.raises(RefNotFoundError, match="0123456789abcdef0123456789abcdef01234567"):
        transport.make(commit="0123456789abcdef0123456789abcdef01234567").get_flow("etl")


def test_tags_resolve(transport, source, bare):
    source.tag("release-1")
    source.commit(V2_FMT)
    sync(source, bare)
    assert transport.make(tag="release-1").get_flow("etl").run().results["transform"] == "v1:0,10,20"


def test_token_travels_in_a_header_only(http, source, tmp_path, caplog):
    caplog.set_level("DEBUG")
    storage = http.make(branch_name="trunk")
    storage.get_flow("etl")
    server = http.server
    assert set(server.stats.auth_headers) == {"Basic Y2ktYm90OmdpdFRvazNuLVMzY3JldC1WYWx1ZS0wMTIzNDU2Nzg5"}
    assert not any(TOKEN in r for r in server.stats.requests)
    assert TOKEN not in caplog.text and TOKEN not in repr(storage) and TOKEN not in json.dumps(storage.serialize())
    cache_files = [p for p in Cache().root.rglob("*") if p.is_file()]
    assert not any(p.name == "config" for p in cache_files)  # no .git/config written anywhere
    assert not any(TOKEN.encode() in p.read_bytes() for p in cache_files)
    # the header's base64 user:token form is a secret too: an error or log line echoing it is masked
    from gitflows.redact import redact

    assert redact("sent Authorization: Basic Y2ktYm90OmdpdFRvazNuLVMzY3JldC1WYWx1ZS0wMTIzNDU2Nzg5") == \
        "sent Authorization: Basic ***"
    assert "Y2ktYm90OmdpdFRvazNuLVMzY3JldC1WYWx1ZS0wMTIzNDU2Nzg5" not in caplog.text


def test_wrong_token(http, monkeypatch, caplog):
    caplog.set_level("DEBUG")
    monkeypatch.setenv("GIT_TOKEN", "wrong-" + TOKEN)
    with pytest.raises(AuthenticationError, match="HTTP 401.*GIT_TOKEN") as err:
        http.make(branch_name="trunk").get_flow("etl")
    assert TOKEN not in str(err.value) + caplog.text


def test_unknown_repo(http, monkeypatch):
    with pytest.raises(RepoNotFoundError, match="nope.git"):
        http.make(repo="nope", branch_name="trunk").get_flow("etl")


def test_server_dying_mid_fetch_leaves_nothing_half_written(http, source, caplog):
    caplog.set_level("DEBUG")
    storage = http.make(commit=source.v1)
    http.server.die_after = 40
    with pytest.raises(RemoteError) as err:
        storage.get_flow("etl")
    assert TOKEN not in str(err.value) + caplog.text
    assert not list(Cache().root.glob("trees/**/flows/etl.py"))  # no tree was materialised
    http.server.die_after = None
    assert storage.get_flow("etl").run().results["transform"] == "v1:0,10,20"


def test_unreachable_server(source, monkeypatch):
    from ..servers.fixtures import free_port

    monkeypatch.setenv("GIT_TOKEN", TOKEN)
    storage = Git("flows/etl.py", "flows", repo_host=f"http://127.0.0.1:{free_port()}", git_token_secret_name="GIT_TOKEN")
    with pytest.raises(RemoteError, match="after 3 attempts") as err:
        storage.get_flow("etl")
    assert TOKEN not in str(err.value)


def test_fetch_cost_follows_the_closure(tmp_path, source, bare, caplog):
    """With filter support only the closure's blobs cross the wire; without it, the whole commit does, and the
    server's progress lines show in the log (``gitflows -v``) while it does."""
    import logging
    import os

    from ..servers.fixtures import start_http
    from ..servers.git_http import configure

    source.commit({"data/big.bin": os.urandom(3_000_000)}, "a big unrelated file")
    sync(source, bare)
    server = start_http(bare.parent)
    try:
        os.environ["CLONE_URL_BIG"] = f"{server.url}/flows.git"
        storage = Git("flows/etl.py", "acme/flows", git_clone_url_secret_name="CLONE_URL_BIG", branch_name="trunk")
        assert storage.get_flow("etl").run().results["transform"] == "v1:0,10,20"
        filtered = server.stats.bytes_sent
        assert filtered < 50_000
        configure(str(bare), allow_filter=False, allow_any_sha1=False)
        clear_cache()
        server.stats.reset()
        caplog.set_level(logging.INFO, logger="gitflows")
        caplog.clear()
        assert storage.get_flow("etl").run().results["transform"] == "v1:0,10,20"
        assert server.stats.bytes_sent > 3_000_000  # the fallback: a shallow fetch of the whole commit
        progress = [r.getMessage() for r in caplog.records if ": server: " in r.getMessage()]
        assert any("objects" in line for line in progress), [r.getMessage() for r in caplog.records]
    finally:
        os.environ.pop("CLONE_URL_BIG", None)
        server.stop()


def test_token_credentials_are_prefects_user_name_and_token():
    """The same on every host (Prefect 1.4.1): git_token_username (default: the repo owner) and the token;
    with format_access_token=False the secret as given. Per-host user names are gone (see docs/git.md)."""
    formatted = token_credentials("t", "acme", True)
    assert (formatted.username, formatted.password, formatted.bearer) == ("acme", "t", None)
    raw = token_credentials("user:pass", "acme", False)
    assert (raw.username, raw.password, raw.bearer) == ("user", "pass", None)
    bare = token_credentials("t0ken", "acme", False)
    assert (bare.username, bare.password) == ("t0ken", "")
    assert token_credentials("Bearer t0ken", "acme", False).bearer == "t0ken"
    assert Git("f.py", "acme/flows", repo_host="gitlab.example.com").git_token_username == "acme"


def test_urls_and_credentials_in_clone_url(monkeypatch):
    monkeypatch.setenv("URL_WITH_CREDS", "https://bob:s3cretpass@git.example.com/acme/flows.git")
    host = Git("flows/etl.py", "acme/flows", git_clone_url_secret_name="URL_WITH_CREDS").make_host()
    assert host.url == "https://git.example.com/acme/flows.git"
    assert Git("f.py", "acme/flows", use_ssh=True).make_host().url == "git@github.com:acme/flows.git"
    assert Git("f.py", "acme/flows", repo_host="gitlab.com").make_host().url == "https://gitlab.com/acme/flows.git"


def test_retry_after_from_the_server_is_not_slept_by_the_http_library(tmp_path, monkeypatch):
    """dulwich's urllib3 honoured ``Retry-After: 3600`` on a 503 (an hour asleep); only gitflows' bounded
    policy applies, and the load ends with one gitflows error naming the server."""
    import http.server
    import threading
    import time as _time

    from gitflows.errors import GitflowsError

    hits = []

    class Busy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(503)
            self.send_header("Retry-After", "3600")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        storage = Git(flow_path="flows/etl.py", repo="acme/flows", repo_host=f"http://127.0.0.1:{server.server_port}")
        started = _time.monotonic()
        with pytest.raises(GitflowsError) as info:
            storage.get_flow()
        elapsed = _time.monotonic() - started
    finally:
        server.shutdown()
    assert elapsed < 20, f"slept {elapsed:.0f}s"
    assert f"127.0.0.1:{server.server_port}" in str(info.value)
    assert 1 <= len(hits) <= 6  # gitflows' attempts, not urllib3's on top


@pytest.mark.parametrize("status", [401, 403, 404, 500])
def test_a_git_server_echoing_the_token_never_has_it_carried_by_the_error(tmp_path, monkeypatch, status):
    """A server (or a proxy) answering with the request echoed back: the token raw and in the Basic
    header. The error a user gets carries it nowhere: message, args, chained exceptions."""
    import base64
    import http.server
    import threading

    from gitflows.errors import GitflowsError

    from ..conftest import assert_secret_not_carried

    token = "glpat-EchoedT0kenValue0123456789"
    monkeypatch.setenv("GIT_TOKEN", token)
    monkeypatch.setenv("GITFLOWS_RETRY_BACKOFF", "0.01")
    seen = []

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(self.headers.get("Authorization", ""))
            basic = base64.b64encode(f"oauth2:{token}".encode()).decode()
            body = (f"denied: you sent {self.headers.get('Authorization')} (also Basic {basic}, token {token})"
                    ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        storage = Git(flow_path="flows/etl.py", repo="acme/flows", repo_host=f"http://127.0.0.1:{server.server_port}",
                      git_token_secret_name="GIT_TOKEN", git_token_username="oauth2")
        with pytest.raises(GitflowsError) as info:
            storage.get_flow()
    finally:
        server.shutdown()
    assert seen and all(h.startswith("Basic ") for h in seen)  # the token did reach the server, in a header
    assert f"127.0.0.1:{server.server_port}" in str(info.value)
    assert_secret_not_carried(token, info.value)


def test_a_pinned_commit_costs_three_requests_and_a_branch_one_more(source, bare):
    """Over smart HTTP the loader knows what it wants: the commit's trees in one POST, then the script's blob,
    then the blobs its imports need — no capability or ref exchange for a pinned SHA; a branch costs one ref
    lookup. A server that cannot answer that way gets the general negotiation (the no-filter tests)."""
    import os

    from ..servers.fixtures import start_http

    server = start_http(bare.parent)
    try:
        os.environ["CLONE_URL_COUNT"] = f"{server.url}/flows.git"
        pinned = Git("flows/etl.py", "acme/flows", git_clone_url_secret_name="CLONE_URL_COUNT", commit=source.v1)
        assert pinned.get_flow("etl").run().results["transform"] == "v1:0,10,20"
        assert server.stats.requests == ["POST /flows.git/git-upload-pack"] * 3, server.stats.requests
        clear_cache()
        server.stats.reset()
        branch = Git("flows/etl.py", "acme/flows", git_clone_url_secret_name="CLONE_URL_COUNT", branch_name="trunk")
        assert branch.get_flow("etl").run().results["transform"] == "v1:0,10,20"
        assert server.stats.requests == ["POST /flows.git/git-upload-pack"] * 4, server.stats.requests  # + ls-refs
        server.stats.reset()
        assert branch.get_flow("etl").run().results["transform"] == "v1:0,10,20"  # warm: only the ref lookup
        assert server.stats.requests == ["POST /flows.git/git-upload-pack"], server.stats.requests
    finally:
        os.environ.pop("CLONE_URL_COUNT", None)
        server.stop()
