from __future__ import annotations

import time

import pytest

from gitflows.errors import (
    AccessDeniedError,
    AuthenticationError,
    FlowNotFoundError,
    IntegrityError,
    PathNotFoundError,
    RateLimitedError,
    RefNotFoundError,
    RemoteError,
    RepoNotFoundError,
    SecretNotFoundError,
)
from gitflows.storage import from_dict
from gitflows.storage.github import GitHub

from ..fakes.apis import json_reply, rate_limit_headers
from ..fakes.github_api import FakeGitHub
from .conftest import TOKEN, assert_secret_hidden

BASE = "http://127.0.0.1:8765/api/v3"


@pytest.fixture
def github(rsps, source, monkeypatch):
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    return FakeGitHub(rsps, source, base=BASE, token=TOKEN)


def storage(**kw):
    args = {"repo": "acme/flows", "path": "flows/etl.py", "access_token_secret": "GH_TOKEN", "base_url": BASE}
    args.update(kw)
    s = GitHub(**args)
    return s


def test_loads_flow_with_sibling_modules_at_a_branch(github, source):
    s = storage(ref="trunk")
    flow = s.get_flow(flow_name="etl")
    assert flow.run().results["transform"] == "v1:0,10,20"
    paths = [p for _, p in github.requests]
    assert paths[0].startswith("/repos/acme/flows/commits/trunk")
    assert paths[1] == f"/repos/acme/flows/git/trees/{source.v1}?recursive=1"
    assert len([p for p in paths if "/git/blobs/" in p]) == 5  # etl, lib/__init__, lib/helpers, lib/fmt, consts
    assert len(paths) == 7
    assert all(h == f"token {TOKEN}" for h in github.auth_headers)
    assert all(TOKEN not in p for p in paths)


def test_default_branch_comes_from_the_host_not_master(github, source):
    flow = storage().get_flow(flow_name="other")
    assert flow.name == "other"
    paths = [p for _, p in github.requests]
    assert paths[0] == "/repos/acme/flows"
    assert paths[1].startswith("/repos/acme/flows/commits/trunk")


def test_build_pins_the_sha_and_a_moved_branch_does_not_change_the_flow(github, source):
    s = storage(ref="trunk")
    from gitflows import Flow

    s.add_flow(Flow("etl"))
    s.build()
    assert s.sha == source.v1
    data = s.serialize()
    assert data["sha"] == source.v1
    assert [p for p, _ in data["closures"]["etl"]][0] == "flows/etl.py"
    # the branch moves on
    source.commit({"flows/lib/fmt.py": "def label(rows):\n    return 'v2:' + ','.join(map(str, rows))\n"}, "v2")
    github.requests.clear()
    rebuilt = from_dict(data)
    assert rebuilt.get_flow().run().results["transform"] == "v1:0,10,20"
    assert not [p for _, p in github.requests if "/commits/" in p]  # a pinned SHA is never re-resolved


def test_warm_load_makes_no_request_and_survives_an_unreachable_host(github, rsps, source):
    s = storage(ref=source.v1)
    s.get_flow(flow_name="etl")
    assert github.requests
    github.requests.clear()
    rsps.reset()  # the host is gone: every request would now fail with a connection error
    flow = s.get_flow(flow_name="etl")
    assert flow.run().results["transform"] == "v1:0,10,20"
    assert github.requests == []


def test_two_shas_of_one_repo_load_in_one_process(github, source):
    v2 = source.commit({"flows/lib/fmt.py": "def label(rows):\n    return 'v2:' + ','.join(map(str, rows))\n"})
    one = storage(ref=source.v1).get_flow(flow_name="etl")
    two = storage(ref=v2).get_flow(flow_name="etl")
    again = storage(ref=source.v1).get_flow(flow_name="etl")
    assert one.run().results["transform"] == "v1:0,10,20"
    assert two.run().results["transform"] == "v2:0,10,20"
    assert again.run().results["transform"] == "v1:0,10,20"


def test_tampered_blob_is_an_integrity_error(github, source):
    blob, _ = source.blob_at(source.v1, "flows/lib/helpers.py")
    github.fail(f"/git/blobs/{blob}", 200, {"sha": blob, "size": 5, "content": "ZXZpbAo=", "encoding": "base64",
                                             "url": "x", "node_id": "x"})
    with pytest.raises(IntegrityError) as err:
        storage(ref=source.v1).get_flow(flow_name="etl")
    text = str(err.value)
    assert "GitHub acme/flows" in text and "flows/lib/helpers.py" in text and source.v1 in text


def test_registered_closure_is_verified(github, source):
    s = storage(ref=source.v1)
    s.add_flow(__import__("gitflows").Flow("etl"))
    s.build()
    data = s.serialize()
    # a record whose blob id for the helper differs from what the server holds (e.g. a force-push)
    data["closures"]["etl"][1][1] = "0" * 40
    from gitflows.cache import Cache

    import shutil

    shutil.rmtree(Cache().root)
    with pytest.raises(IntegrityError, match="flows/lib/.* at commit .*the registered blob 0{40} is not on the server"):
        from_dict(data).get_flow()


def test_several_flows_need_a_name(github, source):
    with pytest.raises(FlowNotFoundError, match=r"defines 2 flows \('etl', 'other'\)"):
        storage(ref=source.v1).get_flow()
    with pytest.raises(FlowNotFoundError, match="flow 'nope' not found in flows/etl.py at .*flows found: 'etl', 'other'"):
        storage(ref=source.v1).get_flow(flow_name="nope")


def test_bad_token_is_an_authentication_error_without_the_token(rsps, source, monkeypatch, debug_logs):
    FakeGitHub(rsps, source, base=BASE, token="the-right-one")
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    s = storage(ref="trunk")
    with pytest.raises(AuthenticationError) as err:
        s.get_flow(flow_name="etl")
    assert "HTTP 401: Bad credentials" in str(err.value) and "GH_TOKEN" in str(err.value)
    assert "GitHub acme/flows" in str(err.value) and "resolving ref 'trunk'" in str(err.value)
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs, storage=s)


def test_missing_secret_named_by_the_user(github, monkeypatch):
    monkeypatch.delenv("GH_TOKEN")
    with pytest.raises(SecretNotFoundError, match="secret 'GH_TOKEN' not found"):
        storage(ref="trunk").get_flow(flow_name="etl")


def test_rate_limit_far_away_says_when_it_resets(github, debug_logs):
    reset = int(time.time() + 3600)
    github.fail("/commits/", 403, {"message": "API rate limit exceeded for user ID 1.", "documentation_url":
                                   "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                                   "status": "403"},
                headers={**rate_limit_headers(remaining=0), "X-RateLimit-Reset": str(reset)}, times=10)
    s = storage(ref="trunk")
    with pytest.raises(RateLimitedError) as err:
        s.get_flow(flow_name="etl")
    assert "resets at" in str(err.value) and err.value.reset_at == pytest.approx(reset, abs=1)
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs, storage=s)


def test_rate_limit_soon_is_waited_out(github, source):
    github.fail("/commits/", 403, {"message": "You have exceeded a secondary rate limit.", "status": "403"},
                headers={"Retry-After": "1"}, times=1)
    started = time.monotonic()
    flow = storage(ref="trunk").get_flow(flow_name="etl")
    assert flow.name == "etl" and time.monotonic() - started >= 1.0


def test_server_errors_are_retried_then_reported(github, debug_logs):
    github.fail("/git/trees/", 502, "<html>Bad Gateway</html>", times=2)
    assert storage(ref="trunk").get_flow(flow_name="etl").name == "etl"
    github.fail("/git/trees/", 500, {"message": "Server Error"}, times=10)
    s = storage(ref="trunk")
    import shutil

    from gitflows.cache import Cache

    shutil.rmtree(Cache().root)
    with pytest.raises(RemoteError, match="server kept failing after 4 attempts") as err:
        s.get_flow(flow_name="etl")
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs, storage=s)


def test_unreachable_host_is_a_remote_error(rsps, source, monkeypatch, debug_logs):
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    s = storage(ref="trunk")  # no fake registered: every request fails to connect
    with pytest.raises(RemoteError, match="no answer") as err:
        s.get_flow(flow_name="etl")
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs, storage=s)


def test_not_found_cases_are_told_apart(github, source, debug_logs):
    with pytest.raises(RefNotFoundError, match="no branch, tag or commit 'nope'"):
        storage(ref="nope").get_flow(flow_name="etl")
    with pytest.raises(RepoNotFoundError, match="GitHub acme/other .*does not exist or the token cannot see it"):
        storage(repo="acme/other", ref="trunk").get_flow(flow_name="etl")
    with pytest.raises(PathNotFoundError) as err:
        storage(path="flows/etl2.py", ref="trunk").get_flow(flow_name="etl")
    assert "flows/etl2.py does not exist at commit" in str(err.value)
    assert "flows/consts.py, flows/etl.py" in str(err.value)
    assert_secret_hidden(TOKEN, error=err.value, caplog=debug_logs)


def test_forbidden_is_access_denied(github):
    github.fail("/commits/", 403, {"message": "Resource not accessible by personal access token", "status": "403"},
                headers=rate_limit_headers(remaining=4000))
    with pytest.raises(AccessDeniedError, match="access denied \\(HTTP 403: Resource not accessible"):
        storage(ref="trunk").get_flow(flow_name="etl")


def test_serialize_and_repr_name_the_secret_only(github, source):
    s = storage(ref="trunk")
    s.get_flow(flow_name="etl")
    assert s.serialize()["access_token_secret"] == "GH_TOKEN"
    assert_secret_hidden(TOKEN, storage=s)


def test_no_secret_configured_reads_anonymously(rsps, source):
    api = FakeGitHub(rsps, source, base=BASE)
    flow = GitHub(repo="acme/flows", path="flows/etl.py", ref="trunk", base_url=BASE).get_flow(flow_name="etl")
    assert flow.name == "etl"
    assert set(api.auth_headers) == {None}
