"""Prefect 1.4.1's tests/storage/test_codecommit_storage.py, ported to gitflows.

Prefect mocked boto3. Here file content comes from the CodeCommit fake the suite already has
(tests/fakes/codecommit_api.py: it answers inside botocore from a real git repository, validating
every request and answer against the service model: moto implements no CodeCommit file API), and
credentials are checked by moto in server mode with IAM authentication enforced (its CodeCommit
``GetRepository`` is real), so a wrong key is refused by the server.

Not ported:
- ``clear_boto3_cache`` (fixture): Prefect's client cache is an internal; gitflows makes one client per host.
"""

from __future__ import annotations

import json
import pickle
import uuid

import boto3
import pytest

from gitflows import Flow
from gitflows.errors import AuthenticationError, PathNotFoundError, RefNotFoundError
from gitflows.storage import CodeCommit, from_dict
from tests.fakes.codecommit_api import FakeCodeCommit
from tests.hosts.conftest import source  # noqa: F401
from tests.prefect1.test_s3_storage import aws_auth, aws_env  # noqa: F401

OPTIONS = {"region_name": "us-east-1", "endpoint_url": "http://127.0.0.1:1"}


@pytest.fixture
def fake(source):  # noqa: F811
    yield FakeCodeCommit(source)
    boto3.DEFAULT_SESSION = None


@pytest.fixture
def moto_repo(aws_auth):  # noqa: F811
    name = f"flows-{uuid.uuid4().hex[:10]}"
    aws_auth.client("codecommit").create_repository(repositoryName=name)
    return name


def test_create_codecommit_storage():
    storage = CodeCommit(repo="test/repo")
    assert storage
    assert storage.logger


def test_create_codecommit_storage_init_args():
    storage = CodeCommit(
        repo="test/repo",
        path="flow.py",
        commit="master",
        client_options={"endpoint_url": "http://some-endpoint", "use_ssl": False},
        secrets=["auth"],
    )
    assert storage
    assert storage.flows == dict()
    assert storage.repo == "test/repo"
    assert storage.path == "flow.py"
    assert storage.commit == "master"
    assert storage.client_options == {
        "endpoint_url": "http://some-endpoint",
        "use_ssl": False,
    }
    assert storage.secrets == ["auth"]


def test_serialize_codecommit_storage():
    storage = CodeCommit(
        repo="test/repo",
        path="flow.py",
        commit="master",
        client_options={"endpoint_url": "http://some-endpoint", "use_ssl": False},
        secrets=["auth"],
    )
    serialized_storage = storage.serialize()

    assert serialized_storage["type"] == "CodeCommit"
    assert serialized_storage["repo"] == "test/repo"
    assert serialized_storage["path"] == "flow.py"
    assert serialized_storage["commit"] == "master"
    assert serialized_storage["client_options"] == {
        "endpoint_url": "http://some-endpoint",
        "use_ssl": False,
    }
    assert serialized_storage["secrets"] == ["auth"]


def test_codecommit_client_property(aws_auth, moto_repo, monkeypatch):  # noqa: F811
    """Prefect: AWS_CREDENTIALS (ACCESS_KEY, SECRET_ACCESS_KEY, SESSION_TOKEN) reached boto3.client with the
    client options. Here moto checks them: the repository is reached (it is empty, so it has no default
    branch to load from); a wrong session token is refused."""
    monkeypatch.setenv("AWS_CREDENTIALS", json.dumps(aws_auth.temporary()))
    storage = CodeCommit(repo=moto_repo, path="flow.py", client_options=aws_auth.options)
    with pytest.raises(RefNotFoundError, match=f"CodeCommit {moto_repo} .*has no default branch"):
        storage.get_flow("test")
    client = storage._boto3_client  # Prefect's property: a client signed with those credentials
    assert client.get_repository(repositoryName=moto_repo)["repositoryMetadata"]["repositoryName"] == moto_repo

    monkeypatch.setenv("AWS_CREDENTIALS", json.dumps(dict(aws_auth.temporary(), SESSION_TOKEN="wrong-token")))
    with pytest.raises(AuthenticationError, match=f"CodeCommit {moto_repo}"):
        storage.get_flow("test")


def test_credentials_in_client_options_are_used_never_kept(aws_auth, moto_repo, caplog):  # noqa: F811
    """Deliberate difference: Prefect serialized client_options with the keys in them; gitflows uses them for the
    client and keeps them out of client_options, serialize(), repr(), logs, errors and pickles."""
    caplog.set_level("DEBUG")
    options = dict(aws_auth.options, aws_access_key_id=aws_auth.key_id, aws_secret_access_key=aws_auth.secret)
    storage = CodeCommit(repo=moto_repo, path="flow.py", client_options=options)
    with pytest.raises(RefNotFoundError, match="has no default branch"):
        storage.get_flow("test")
    assert storage.client_options == aws_auth.options
    shown = json.dumps(storage.serialize()) + repr(storage) + caplog.text
    assert aws_auth.secret not in shown and aws_auth.key_id not in shown
    assert aws_auth.secret.encode() not in pickle.dumps(storage)

    wrong = CodeCommit(repo=moto_repo, path="flow.py",
                       client_options=dict(options, aws_secret_access_key="wrong-secret-value"))
    with pytest.raises(AuthenticationError) as err:
        wrong.get_flow("test")
    assert "wrong-secret-value" not in str(err.value) + repr(wrong) + caplog.text

    rebuilt = from_dict(storage.serialize())  # on another machine: the chain, which has nothing here
    with pytest.raises(AuthenticationError, match="no AWS credentials found"):
        rebuilt.get_flow("test")


def test_add_flow_to_codecommit_storage():
    storage = CodeCommit(repo="test/repo", path="flow.py", commit="master")

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f) == "flow.py"
    assert f.name in storage


def test_add_flow_with_a_path_from_the_repository_root():
    """Prefect's own example is ``path="/flows/flow.py"`` (CodeCommit's notation for the repository root).
    Deliberate difference: the recorded location is repository-relative, without the leading '/'."""
    storage = CodeCommit(repo="flows", path="/flows/flow.py")
    assert storage.add_flow(Flow("test")) == "flows/flow.py"
    assert storage.path == "/flows/flow.py"


def test_add_flow_to_codecommit_already_added():
    storage = CodeCommit(repo="test/repo", path="flow.py", commit="master")

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f) == "flow.py"
    assert f.name in storage

    with pytest.raises(ValueError):
        storage.add_flow(f)


def test_get_flow_codecommit(fake, source):  # noqa: F811
    f = Flow("etl")
    storage = CodeCommit(repo="flows", path="flows/etl.py", commit="trunk", client_options=OPTIONS)

    assert f.name not in storage
    storage.add_flow(f)

    new_flow = storage.get_flow(f.name)
    assert new_flow.name == f.name
    assert new_flow.run().is_successful()


@pytest.mark.parametrize("commit", ["v1.0", "refs/tags/v1.0", "refs/heads/release", "release", "full-sha", None])
def test_get_flow_codecommit_commit_specifiers(fake, source, commit):  # noqa: F811
    """``commit`` is what CodeCommit's GetFile took as ``commitSpecifier`` in Prefect: a full commit id, a tag, a
    branch name, or a reference such as refs/heads/main. (None: the default branch; Prefect 1 crashed.)"""
    source.tag("v1.0", source.v1)
    source.git("branch", "release", source.v1)
    source.commit({"flows/lib/fmt.py": "def label(rows):\n    return 'v2:' + ','.join(map(str, rows))\n"})
    commit = source.v1 if commit == "full-sha" else commit
    storage = CodeCommit(repo="flows", path="/flows/etl.py", commit=commit, client_options=OPTIONS)
    storage.add_flow(Flow("etl"))
    expected = "v2:" if commit is None else "v1:"
    assert storage.get_flow("etl").run().results["transform"].startswith(expected)
    storage.build()
    assert storage.sha == (source.rev_parse("trunk") if commit is None else source.v1)


def test_get_flow_codecommit_errors(fake, source):  # noqa: F811
    """Prefect let botocore's ClientError through (FileDoesNotExistException, CommitDoesNotExistException...).
    gitflows: PathNotFoundError (a FileNotFoundError) / RefNotFoundError naming the repository and what was asked."""
    storage = CodeCommit(repo="flows", path="flows/gone.py", commit="trunk", client_options=OPTIONS)
    storage.add_flow(Flow("etl"))
    with pytest.raises(FileNotFoundError, match="flows/gone.py does not exist at commit") as err:
        storage.get_flow("etl")
    assert isinstance(err.value, PathNotFoundError)
    storage = CodeCommit(repo="flows", path="flows/etl.py", commit="refs/tags/nope", client_options=OPTIONS)
    with pytest.raises(RefNotFoundError, match="CodeCommit flows .*no branch, tag or commit 'refs/tags/nope'"):
        storage.get_flow("etl")


def test_repository_name_with_a_slash_is_refused():
    """Deliberate difference: Prefect's tests use repo="test/repo", which CodeCommit cannot name; gitflows
    accepts it at construction (as Prefect) and refuses it when the storage is used, before any request."""
    storage = CodeCommit(repo="test/repo", path="flow.py", client_options=OPTIONS)
    with pytest.raises(ValueError, match="CodeCommit repo must be a repository name .*'test/repo'"):
        storage.get_flow("test")
