"""GitHub specifics; the behaviour every API host shares is in test_api_hosts.py."""
from __future__ import annotations

import time

import pytest

from gitflows.errors import (
    AccessDeniedError,
    IntegrityError,
    SecretNotFoundError,
)
from gitflows.storage import from_dict
from gitflows.storage.github import GitHub

from ..fakes.apis import rate_limit_headers
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
    # then GraphQL: the script, then every candidate path of its imports at once; no listing, no tree
    assert paths[1:] == ["/graphql", "/graphql"]
    assert all(h == f"token {TOKEN}" for h in github.auth_headers)
    assert all(TOKEN not in p for p in paths)


def test_default_branch_comes_from_the_host_not_master(github, source):
    flow = storage().get_flow(flow_name="other")
    assert flow.name == "other"
    paths = [p for _, p in github.requests]
    assert paths[0] == "/repos/acme/flows"
    assert paths[1].startswith("/repos/acme/flows/commits/trunk")








def test_tampered_blob_is_an_integrity_error(github, source):
    """Content that does not hash to the blob id the server gives with it (a rewriting proxy): GraphQL's text is
    re-read by id over REST, and bytes that still do not match are refused."""
    blob, _ = source.blob_at(source.v1, "flows/lib/helpers.py")
    github.corrupted[blob] = b"evil\n"
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
    import shutil

    from gitflows.cache import Cache

    shutil.rmtree(Cache().root)
    with pytest.raises(IntegrityError, match="flows/lib/helpers.py at commit .* the registered record says 0{40}"):
        from_dict(data).get_flow()






def test_missing_secret_named_by_the_user(github, monkeypatch):
    monkeypatch.delenv("GH_TOKEN")
    with pytest.raises(SecretNotFoundError, match="secret 'GH_TOKEN' not found"):
        storage(ref="trunk").get_flow(flow_name="etl")




def test_rate_limit_soon_is_waited_out(github, source):
    github.fail("/commits/", 403, {"message": "You have exceeded a secondary rate limit.", "status": "403"},
                headers={"Retry-After": "1"}, times=1)
    started = time.monotonic()
    flow = storage(ref="trunk").get_flow(flow_name="etl")
    assert flow.name == "etl" and time.monotonic() - started >= 1.0








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


def test_a_server_without_graphql_is_read_over_rest(github, source):
    """An old GitHub Enterprise answers 404 on /graphql: one REST look at the repository tells that apart
    from a missing repository, and the load goes on over REST."""
    github.graphql = False
    flow = storage(ref=source.v1).get_flow(flow_name="etl")
    assert flow.run().results["transform"] == "v1:0,10,20"
    paths = [p for _, p in github.requests]
    assert paths.count("/graphql") == 1 and "/repos/acme/flows" in paths
    assert any("/contents/" in p for p in paths)


LATE = ("from gitflows import Flow, task\n"
        "from zz_late import VALUE\n"
        "\n"
        "@task\n"
        "def value():\n"
        "    return VALUE\n"
        "\n"
        "with Flow('late') as flow:\n"
        "    value()\n")


def test_a_folder_past_the_contents_limit_still_finds_its_modules(rsps, source):
    """Without a token (no GraphQL) folders are listed with the contents API, which GitHub cuts at 1,000
    entries: a module past the cut is read directly, not taken to be missing, and the cost stays a handful of
    requests (no paging through the folder)."""
    sha = source.commit({**{f"flows/m{i:04}.py": f"X = {i}\n" for i in range(1100)},
                         "flows/late.py": LATE, "flows/zz_late.py": "VALUE = 'past the cut'\n"}, "1,100 modules")
    api = FakeGitHub(rsps, source, base=BASE)
    flow = GitHub(repo="acme/flows", path="flows/late.py", ref=sha, base_url=BASE).get_flow(flow_name="late")
    assert flow.run().results["value"] == "past the cut"
    assert len(api.requests) <= 8, api.requests


def test_text_graphql_truncates_is_read_again_by_blob_id_and_verified(github, source):
    """GraphQL returns at most 512 kB of a file's text (``isTruncated``) and none of a binary one: those are
    read again by blob id over REST, and checked against it."""
    big = "DATA = " + repr("x" * 600_000) + "\nVALUE = 'big'\n"
    sha = source.commit({"flows/late.py": LATE, "flows/zz_late.py": big}, "a 600 kB module")
    flow = storage(path="flows/late.py", ref=sha).get_flow(flow_name="late")
    assert flow.run().results["value"] == "big"
    assert sum(1 for _, p in github.requests if "/git/blobs/" in p) == 1, github.requests
    assert sum(1 for _, p in github.requests if p == "/graphql") == 2
