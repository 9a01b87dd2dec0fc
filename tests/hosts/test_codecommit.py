"""CodeCommit: the loader's contract through botocore (Stubber and a repository-backed fake)."""

from __future__ import annotations

import shutil

import boto3
import pytest
from botocore.stub import Stubber

from gitflows import Flow
from gitflows.cache import Cache
from gitflows.errors import (
    AccessDeniedError,
    AuthenticationError,
    IntegrityError,
    PathNotFoundError,
    RefNotFoundError,
    RemoteError,
    RepoNotFoundError,
)
from gitflows.hosts.codecommit import CodeCommitHost
from gitflows.storage import from_dict
from gitflows.storage.codecommit import CodeCommit

from ..fakes.codecommit_api import FakeCodeCommit

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
OPTIONS = {"region_name": "us-east-1", "endpoint_url": "http://127.0.0.1:1"}
V2_FMT = {"flows/lib/fmt.py": "def label(rows):\n    return 'v2:' + ','.join(map(str, rows))\n"}


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def fake(source):
    yield FakeCodeCommit(source)
    boto3.DEFAULT_SESSION = None


def storage(**kw):
    args = {"repo": "flows", "path": "flows/etl.py", "client_options": OPTIONS}
    args.update(kw)
    return CodeCommit(**args)


def ops(fake):
    return [op for op, _ in fake.calls]


def test_default_branch_head_with_sibling_modules(fake, source):
    flow = storage().get_flow(flow_name="etl")
    assert flow.run().results["transform"] == "v1:0,10,20"
    calls = ops(fake)
    assert calls[:2] == ["GetRepository", "GetBranch"]
    assert calls.count("GetFile") == 1 and calls.count("GetBlob") == 4  # the script by path, then by blob id
    # only the folders the closure looks into are listed: flows/, flows/lib/, and the root
    assert sorted(p["folderPath"] for op, p in fake.calls if op == "GetFolder") == ["/", "/flows", "/flows/lib"]


def test_branch_and_full_commit(fake, source):
    v2 = source.commit(V2_FMT)
    assert storage(commit="trunk").get_flow(flow_name="etl").run().results["transform"].startswith("v2:")
    assert storage(commit=source.v1).get_flow(flow_name="etl").run().results["transform"].startswith("v1:")
    assert v2 != source.v1


def test_pinned_build_and_warm_load(fake, source):
    s = storage(commit="trunk")
    s.add_flow(Flow("etl"))
    s.build()
    data = s.serialize()
    source.commit(V2_FMT)
    shutil.rmtree(Cache().root)
    fake.calls.clear()
    rebuilt = from_dict(data)
    assert rebuilt.get_flow().run().results["transform"].startswith("v1:")
    assert ops(fake) == ["GetBlob"] * 5  # the recorded closure: no branch lookup, no listing
    fake.calls.clear()
    assert rebuilt.get_flow().run().results["transform"].startswith("v1:")
    assert fake.calls == []


def test_errors_name_what_was_asked(fake, source, caplog):
    caplog.set_level("DEBUG")
    with pytest.raises(RepoNotFoundError, match="CodeCommit nope .*RepositoryDoesNotExistException"):
        storage(repo="nope").get_flow(flow_name="etl")
    with pytest.raises(RefNotFoundError, match="no branch, tag or commit 'feature-x'"):
        storage(commit="feature-x").get_flow(flow_name="etl")
    with pytest.raises(PathNotFoundError, match="flows/gone.py does not exist at commit"):
        storage(path="flows/gone.py", commit="trunk").get_flow(flow_name="etl")
    fake.fail("GetBranch", "AccessDeniedException", "User is not authorized to perform codecommit:GetBranch", 400)
    with pytest.raises(AccessDeniedError, match="not authorized"):
        storage(commit="trunk").get_flow(flow_name="etl")
    fake.fail("GetBranch", "UnrecognizedClientException", "The security token included in the request is invalid.")
    with pytest.raises(AuthenticationError, match="security token .* is invalid"):
        storage(commit="trunk").get_flow(flow_name="etl")
    assert AWS_SECRET not in caplog.text


def test_throttling_and_server_errors_are_retried(fake, source, caplog):
    fake.fail("GetBranch", "ThrottlingException", "Rate exceeded", 400, times=2)
    assert storage(commit="trunk").get_flow(flow_name="etl").name == "etl"
    fake.fail("GetBranch", "InternalFailure", "internal error", 500, times=10)
    with pytest.raises(RemoteError, match="after 4 attempts") as err:
        storage(commit="trunk").get_flow(flow_name="etl")
    assert AWS_SECRET not in str(err.value) + caplog.text


def test_integrity_against_the_record(fake, source):
    s = storage(commit="trunk")
    s.add_flow(Flow("etl"))
    s.build()
    data = s.serialize()
    helper = source.blob_at(source.v1, "flows/lib/helpers.py")[0]
    fake.tampered[helper] = b"def scale(rows, factor):\n    return 'pwned'\n"  # the server now answers other bytes
    shutil.rmtree(Cache().root)
    with pytest.raises(IntegrityError, match="flows/lib/helpers.py at commit .*the registered record says"):
        from_dict(data).get_flow()


def test_tag_and_full_reference(fake, source):
    """A tag and ``refs/heads/<branch>`` are commit specifiers too (Prefect 1 passed them to GetFile)."""
    source.tag("v1.0", source.v1)
    source.commit(V2_FMT)
    fake.calls.clear()
    assert storage(commit="v1.0").get_flow(flow_name="etl").run().results["transform"].startswith("v1:")
    assert ops(fake)[:3] == ["GetBranch", "GetFolder", "GetFile"]  # the resolve's root listing is reused
    assert [p["folderPath"] for op, p in fake.calls if op == "GetFolder"].count("/") == 1
    fake.calls.clear()
    assert storage(commit="refs/heads/trunk").get_flow(flow_name="etl").run().results["transform"].startswith("v2:")
    assert "GetBranch" not in ops(fake)
    with pytest.raises(RefNotFoundError, match="no branch, tag or commit 'refs/tags/nope'"):
        storage(commit="refs/tags/nope").get_flow(flow_name="etl")


def test_stubber_default_branch_and_missing_branch():
    """The exact calls and shapes, with botocore's own Stubber."""
    client = boto3.client("codecommit", **OPTIONS)
    host = CodeCommitHost("flows", OPTIONS, client=client)
    with Stubber(client) as stub:
        stub.add_response("get_repository", {"repositoryMetadata": {"repositoryName": "flows", "defaultBranch": "trunk"}},
                          {"repositoryName": "flows"})
        stub.add_response("get_branch", {"branch": {"branchName": "trunk", "commitId": "a" * 40}},
                          {"repositoryName": "flows", "branchName": "trunk"})
        assert host.resolve(None) == "a" * 40
        stub.add_client_error("get_branch", "BranchDoesNotExistException", "Branch nope does not exist.",
                              expected_params={"repositoryName": "flows", "branchName": "nope"})
        stub.add_client_error("get_folder", "CommitDoesNotExistException", "Commit nope does not exist.",
                              expected_params={"repositoryName": "flows", "commitSpecifier": "nope", "folderPath": "/"})
        with pytest.raises(RefNotFoundError, match="'nope'"):
            host.resolve("nope")
        stub.assert_no_pending_responses()
