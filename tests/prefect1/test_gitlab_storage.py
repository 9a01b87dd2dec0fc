"""Prefect 1.4.1 tests/storage/test_gitlab_storage.py, ported to gitflows.

Prefect mocked ``gitlab.Gitlab`` (and ``extract_flow_from_file``); here a fake GitLab REST API
(tests/fakes/gitlab_api.py) answers from a real git repository, and each test asserts what a user
sees: the flow loaded back at the right commit, or the error.

Deliberate differences (docs/prefect1.md, "GitHub, GitLab, Bitbucket, CodeCommit"):
- without ``ref``, the project's default branch as GitLab reports it is loaded (Prefect: ``"master"``);
- a missing project, ref or file raises gitflows' ``RepoNotFoundError`` / ``RefNotFoundError`` /
  ``PathNotFoundError``, and bad credentials ``AuthenticationError``, instead of python-gitlab's
  ``GitlabGetError`` / ``GitlabAuthenticationError``.
- ``add_flow`` on a storage without ``path`` raises ``ConfigurationError`` (a ``ValueError``); Prefect
  recorded ``None``.

``test_get_gitlab_client`` and ``test_get_gitlab_client_errors_if_secret_provided_and_not_found``
called ``storage._get_gitlab_client()``, which gitflows does not have: the ports load a flow and
assert the server that answered, the token it received, and the error for a missing secret.
"""

from __future__ import annotations

import sys

import pytest

from gitflows import Flow
from gitflows.errors import (
    AuthenticationError,
    LibraryMissingError,
    PathNotFoundError,
    RefNotFoundError,
    RepoNotFoundError,
    SecretNotFoundError,
)
from gitflows.storage import GitLab
from tests.fakes.gitlab_api import FakeGitLab
from tests.hosts.conftest import TOKEN, assert_secret_hidden, fast_retries, prefect_repo, rsps  # noqa: F401

HOST = "http://127.0.0.1:8773"


@pytest.fixture
def gitlab_api(rsps, prefect_repo):  # noqa: F811
    return FakeGitLab(rsps, prefect_repo, full_path="test/repo", project_id=42, base=HOST)


def test_create_gitlab_storage():
    storage = GitLab(repo="test/repo")
    assert storage
    assert storage.logger


def test_create_gitlab_storage_init_args():
    storage = GitLab(repo="test/repo", path="flow.py", secrets=["auth"])
    assert storage
    assert storage.flows == dict()
    assert storage.repo == "test/repo"
    assert storage.path == "flow.py"
    assert storage.secrets == ["auth"]


@pytest.mark.parametrize("secret_name,secret_arg", [("TEST", "TEST"), ("GITLAB_ACCESS_TOKEN", None)])
@pytest.mark.parametrize("host", [None, HOST])
def test_get_gitlab_client(rsps, prefect_repo, monkeypatch, secret_name, secret_arg, host, caplog):  # noqa: F811
    """The server is ``host`` (default https://gitlab.com, answered through `responses`: nothing leaves the
    machine); the token is the named secret (or GITLAB_ACCESS_TOKEN), sent in the PRIVATE-TOKEN header."""
    api = FakeGitLab(rsps, prefect_repo, full_path="test/repo", base=host or "https://gitlab.com", token=TOKEN)
    monkeypatch.setenv(secret_name, TOKEN)
    storage = GitLab(repo="test/repo", path="flow.py", host=host, access_token_secret=secret_arg)
    storage.add_flow(Flow("test"))
    assert storage.get_flow("test").run().results["where"] == "main"
    assert api.requests[0] == ("GET", "/api/v4/projects/test%2Frepo")
    assert all(TOKEN not in p for _, p in api.requests)
    assert_secret_hidden(TOKEN, caplog=caplog, storage=storage)


def test_get_gitlab_client_errors_if_secret_provided_and_not_found(gitlab_api):
    storage = GitLab(repo="test/repo", path="flow.py", host=HOST, access_token_secret="MISSING")
    storage.add_flow(Flow("test"))
    with pytest.raises(SecretNotFoundError, match="MISSING"):
        storage.get_flow("test")
    assert gitlab_api.requests == []


def test_wrong_token_is_an_authentication_error(rsps, prefect_repo, monkeypatch, caplog):  # noqa: F811
    """Prefect logged "Unable to authenticate GitLab account" and let GitlabAuthenticationError through."""
    FakeGitLab(rsps, prefect_repo, full_path="test/repo", base=HOST, token=TOKEN)
    monkeypatch.setenv("GITLAB_ACCESS_TOKEN", "glpat-wrong-value-123")
    storage = GitLab(repo="test/repo", path="flow.py", host=HOST, ref="myref")
    storage.add_flow(Flow("test"))
    with pytest.raises(AuthenticationError, match="401.*check the token in secret GITLAB_ACCESS_TOKEN") as err:
        storage.get_flow("test")
    assert_secret_hidden("glpat-wrong-value-123", error=err.value, caplog=caplog, storage=storage)


def test_add_flow_to_gitlab_storage():
    storage = GitLab(repo="test/repo", path="flow.py")

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f) == "flow.py"
    assert f.name in storage


def test_add_flow_to_gitlab_already_added():
    storage = GitLab(repo="test/repo", path="flow.py")

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f) == "flow.py"
    assert f.name in storage

    with pytest.raises(ValueError) as ex:
        storage.add_flow(f)

    assert "Name conflict" in str(ex.value)


def test_get_flow_gitlab(gitlab_api, prefect_repo):  # noqa: F811
    """Deliberate difference: without ``ref`` gitflows loads the default branch GitLab reports ('main'),
    not an assumed 'master' (here a decoy branch of that name holds another version)."""
    prefect_repo.commit({"flow.py": "raise RuntimeError('the decoy master branch')\n"}, "decoy", branch="master")
    storage = GitLab(repo="test/repo", path="flow.py", host=HOST)

    f = Flow("test")
    assert f.name not in storage
    storage.add_flow(f)

    new_flow = storage.get_flow(f.name)
    assert new_flow.name == f.name
    state = new_flow.run()
    assert state.is_successful()
    assert state.results["where"] == "main"


@pytest.mark.parametrize("repo", ["test/repo", 42, "42"])
def test_get_flow_at_a_ref_by_path_or_project_id(gitlab_api, repo):
    """``repo`` is the project path or its numeric id; ``ref`` a branch, tag or commit."""
    storage = GitLab(repo=repo, path="flow.py", host=HOST, ref="myref")
    storage.add_flow(Flow("test"))
    assert storage.get_flow("test").run().results["where"] == "myref"


def test_get_flow_picks_the_named_flow_out_of_the_script(gitlab_api):
    """A storage that recorded no flows loads the named one from ``path``; the name is never a path."""
    storage = GitLab(repo="test/repo", path="flow.py", host=HOST, ref="myref")
    assert storage.get_flow("extra").name == "extra"
    assert not any("extra" in p for _, p in gitlab_api.requests)


def test_get_flow_missing_project_ref_and_file(gitlab_api, prefect_repo):  # noqa: F811
    """Prefect logged "Error retrieving file contents at flow.py in test/repo@master. Ensure the project and
    file exist." and let GitlabGetError through: gitflows tells the three cases apart."""
    with pytest.raises(RepoNotFoundError, match=r"GitLab test/other .*the project does not exist"):
        GitLab(repo="test/other", path="flow.py", host=HOST, ref="main").get_flow("test")
    with pytest.raises(RefNotFoundError, match=r"GitLab test/repo .*resolving ref 'nope'"):
        GitLab(repo="test/repo", path="flow.py", host=HOST, ref="nope").get_flow("test")
    with pytest.raises(PathNotFoundError, match=f"GitLab test/repo .*: missing.py does not exist at commit "
                                                f"{prefect_repo.main}"):
        GitLab(repo="test/repo", path="missing.py", host=HOST).get_flow("test")


def test_missing_python_gitlab_is_an_import_error(gitlab_api, monkeypatch):
    """Prefect raised ImportError ("please ensure you have installed the gitlab extra")."""
    monkeypatch.setitem(sys.modules, "gitlab", None)  # as if python-gitlab were not installed
    storage = GitLab(repo="test/repo", path="flow.py", host=HOST)
    with pytest.raises(ImportError, match=r"needs python-gitlab:"
                                          r" pip install -e '\.\[gitlab\]' in the gitflows checkout") as err:
        storage.get_flow("test")
    assert isinstance(err.value, LibraryMissingError)
    assert gitlab_api.requests == []


def test_add_flow_without_path_is_refused():
    """Deliberate difference: Prefect recorded ``None`` as the flow's location, which could never load."""
    storage = GitLab(repo="test/repo")
    with pytest.raises(ValueError, match=r"GitLab storage for flow 'test' needs path="):
        storage.add_flow(Flow("test"))
    assert "test" not in storage
