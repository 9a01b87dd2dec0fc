"""Prefect 1.4.1 tests/storage/test_bitbucket_storage.py, ported to gitflows.

Prefect mocked ``atlassian.Bitbucket`` / ``atlassian.bitbucket.cloud.Cloud`` (and
``extract_flow_from_file``); here fake Bitbucket Server and Cloud REST APIs
(tests/fakes/bitbucket_api.py) answer from a real git repository, and each test asserts what a
user sees: the flow loaded back at the right commit, or the error.

Deliberate differences (docs/prefect1.md, "GitHub, GitLab, Bitbucket, CodeCommit"):
- without ``ref``, the repository's default branch as Bitbucket reports it is loaded (Prefect:
  ``"master"``);
- neither ``host`` nor ``workspace``: Prefect sent Bitbucket *Server* API requests to
  https://bitbucket.org (which cannot answer them); gitflows' ``get_flow`` raises a
  ``ConfigurationError`` (a ``ValueError``) saying to set ``workspace=`` (Cloud) or ``host=`` (Server);
- ``workspace`` with ``access_token_secret``: Prefect raised ``ValueError``; gitflows sends the token to
  Bitbucket Cloud (app passwords are being retired in favour of access tokens);
- Bitbucket Server failures raise gitflows' ``AuthenticationError`` / ``RepoNotFoundError`` /
  ``RefNotFoundError`` / ``PathNotFoundError`` instead of letting the HTTP library's error through.
- Bitbucket Server without a token sends no ``Authorization`` header (Prefect: ``Bearer `` and nothing);
- Bitbucket Cloud refs are asked for by name, every page followed (Prefect read one page of branches and
  one of tags);
- ``add_flow`` on a storage without ``path`` raises ``ConfigurationError`` (Prefect recorded ``None``).

Bitbucket Cloud keeps Prefect's builtins: a failed request is a ``RuntimeError``, a ref that is no
branch, tag or commit a ``ValueError`` (the errors are gitflows' own classes as well).

``test_get_bitbucket_server_client`` and its ``..._errors_if_secret_provided_and_not_found`` called
``storage._get_bitbucket_server_client()``, which gitflows does not have: the ports load a flow and
assert the server that answered, the header it received, and the error for a missing secret.
"""

from __future__ import annotations

import base64
import pickle
import sys

import pytest

from gitflows import Flow
from gitflows.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConfigurationError,
    LibraryMissingError,
    PathNotFoundError,
    RefNotFoundError,
    RepoNotFoundError,
    SecretNotFoundError,
)
from gitflows.storage import Bitbucket, from_dict
from tests.fakes.bitbucket_api import FakeBitbucketCloud, FakeBitbucketServer
from tests.hosts.conftest import TOKEN, assert_secret_hidden, fast_retries, prefect_repo, rsps  # noqa: F401

SERVER = "http://127.0.0.1:8774"
CLOUD_API = "https://api.bitbucket.org"  # answered by the fake through `responses`: nothing leaves the machine


@pytest.fixture
def server_api(rsps, prefect_repo, monkeypatch):  # noqa: F811
    monkeypatch.setenv("BITBUCKET_ACCESS_TOKEN", TOKEN)
    return FakeBitbucketServer(rsps, prefect_repo, project="PROJECT", slug="test-repo", base=SERVER, token=TOKEN)


@pytest.fixture
def cloud_api(rsps, prefect_repo, monkeypatch):  # noqa: F811
    """Bitbucket Cloud at its real API URL; the Prefect default secret names hold an app password."""
    monkeypatch.setenv("BITBUCKET_CLOUD_USERNAME", "robot-user")
    monkeypatch.setenv("BITBUCKET_CLOUD_APP_PASSWORD", TOKEN)
    return FakeBitbucketCloud(rsps, prefect_repo, workspace="test-workspace", slug="test-repo", base=CLOUD_API,
                              username="robot-user", password=TOKEN)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_create_bitbucket_storage():
    storage = Bitbucket(project="PROJECT", repo="test-repo")
    assert storage
    assert storage.logger


def test_neither_host_nor_workspace_says_what_to_set(rsps):  # noqa: F811
    """Deliberate difference: Prefect sent Server API requests to https://bitbucket.org; gitflows sends none."""
    storage = Bitbucket(project="PROJECT", repo="test-repo", path="flow.py")
    storage.add_flow(Flow("test"))
    with pytest.raises(ValueError, match="has neither host= nor workspace=: for Bitbucket Cloud set workspace=") \
            as err:
        storage.get_flow("test")
    assert isinstance(err.value, ConfigurationError)
    assert "'PROJECT'" in str(err.value) and "'test-repo'" in str(err.value)
    assert len(rsps.calls) == 0


def test_create_bitbucket_storage_init_args():
    storage = Bitbucket(
        project="PROJECT",
        repo="test-repo",
        workspace="test-workspace",
        path="test-flow.py",
        secrets=["auth"],
    )
    assert storage
    assert storage.project == "PROJECT"
    assert storage.repo == "test-repo"
    assert storage.workspace == "test-workspace"
    assert storage.path == "test-flow.py"
    assert storage.secrets == ["auth"]


@pytest.mark.parametrize("secret_name,secret_arg", [("TEST", "TEST"), ("BITBUCKET_ACCESS_TOKEN", None)])
def test_get_bitbucket_server_client(rsps, prefect_repo, monkeypatch, secret_name, secret_arg, caplog):  # noqa: F811
    """Bitbucket Server at ``host``, with ``Authorization: Bearer <the named secret, or BITBUCKET_ACCESS_TOKEN>``."""
    api = FakeBitbucketServer(rsps, prefect_repo, project="test", slug="test-repo", base=SERVER, token=TOKEN)
    monkeypatch.setenv(secret_name, TOKEN)
    storage = Bitbucket(project="test", repo="test-repo", path="flow.py", host=SERVER, access_token_secret=secret_arg)
    storage.add_flow(Flow("test"))
    assert storage.get_flow("test").run().results["where"] == "main"
    assert set(api.auth_headers) == {f"Bearer {TOKEN}"}
    # the REST API of that repository, and the same repository's clone URL for git reads (Bitbucket 7.13+)
    assert all(p.startswith(("/rest/api/1.0/projects/test/repos/test-repo", "/scm/test/test-repo.git/"))
               for _, p in api.requests)
    assert any(p.startswith("/scm/test/test-repo.git/") for _, p in api.requests)
    assert all(TOKEN not in p for _, p in api.requests)
    assert_secret_hidden(TOKEN, caplog=caplog, storage=storage)


def test_get_bitbucket_server_client_errors_if_secret_provided_and_not_found(server_api):
    storage = Bitbucket(project="PROJECT", repo="test-repo", path="flow.py", host=SERVER,
                        access_token_secret="MISSING")
    storage.add_flow(Flow("test"))
    with pytest.raises(SecretNotFoundError, match="MISSING"):
        storage.get_flow("test")
    assert server_api.requests == []


def test_add_flow_to_bitbucket_storage():
    storage = Bitbucket(project="PROJECT", repo="test-repo", path="test-flow.py")

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f) == "test-flow.py"
    assert f.name in storage

    with pytest.raises(ValueError) as ex:
        storage.add_flow(f)

    assert "Name conflict" in str(ex.value)


def test_get_flow_bitbucket(server_api, prefect_repo):  # noqa: F811
    """Bitbucket Server. Deliberate difference: without ``ref`` the default branch the server reports
    ('main') is loaded, not an assumed 'master' (a decoy branch of that name holds another version)."""
    prefect_repo.commit({"flow.py": "raise RuntimeError('the decoy master branch')\n"}, "decoy", branch="master")
    storage = Bitbucket(project="PROJECT", repo="test-repo", path="flow.py", host=SERVER)

    f = Flow("test")
    assert f.name not in storage
    storage.add_flow(f)

    new_flow = storage.get_flow(f.name)
    assert new_flow.name == f.name
    state = new_flow.run()
    assert state.is_successful()
    assert state.results["where"] == "main"


@pytest.mark.parametrize("ref", ["myref", "v1"])
def test_get_flow_bitbucket_server_at_a_branch_or_tag(server_api, prefect_repo, ref):  # noqa: F811
    prefect_repo.tag("v1", prefect_repo.myref)
    storage = Bitbucket(project="PROJECT", repo="test-repo", path="flow.py", host=SERVER, ref=ref)
    storage.add_flow(Flow("test"))
    assert storage.get_flow("test").run().results["where"] == "myref"


def test_bitbucket_server_failures(rsps, prefect_repo, monkeypatch, caplog):  # noqa: F811
    """Prefect logged "Access denied" / "Invalid address" and let the HTTP error through."""
    FakeBitbucketServer(rsps, prefect_repo, project="PROJECT", slug="test-repo", base=SERVER, token=TOKEN)
    monkeypatch.setenv("BITBUCKET_ACCESS_TOKEN", "wrong-token-value")

    def storage(**kw):
        args = {"project": "PROJECT", "repo": "test-repo", "path": "flow.py", "host": SERVER, "ref": "myref", **kw}
        return Bitbucket(**args)

    with pytest.raises(AuthenticationError, match="401.*check the token in secret BITBUCKET_ACCESS_TOKEN") as err:
        storage().get_flow("test")
    assert_secret_hidden("wrong-token-value", error=err.value, caplog=caplog)
    monkeypatch.setenv("BITBUCKET_ACCESS_TOKEN", TOKEN)
    with pytest.raises(RepoNotFoundError, match="Bitbucket PROJECT/other-repo"):
        storage(repo="other-repo").get_flow("test")
    with pytest.raises(RefNotFoundError, match="'nope'"):
        storage(ref="nope").get_flow("test")
    with pytest.raises(PathNotFoundError, match="missing.py does not exist at commit"):
        storage(path="missing.py").get_flow("test")


def test_get_flow_bitbucket_cloud(cloud_api, prefect_repo):  # noqa: F811
    """``workspace`` and no ``host``: Bitbucket Cloud at https://api.bitbucket.org, as in Prefect."""
    storage = Bitbucket(
        project="PROJECT",
        repo="test-repo",
        workspace="test-workspace",
        path="flow.py",
        ref=prefect_repo.myref,
    )

    f = Flow("test")
    assert f.name not in storage
    storage.add_flow(f)

    new_flow = storage.get_flow(f.name)
    assert new_flow.name == f.name
    state = new_flow.run()
    assert state.is_successful()
    assert state.results["where"] == "myref"
    assert all(p.startswith("/2.0/repositories/test-workspace/test-repo/") for _, p in cloud_api.requests)
    # Prefect's default secret names for an app password, as a basic-auth header
    assert set(cloud_api.auth_headers) == {basic("robot-user", TOKEN)}


@pytest.mark.parametrize("ref", [None, "myref", "v1"])
def test_get_flow_bitbucket_cloud_branch_tag_or_default(cloud_api, prefect_repo, ref):  # noqa: F811
    """Prefect looked ``ref`` up among branches, then tags; without ``ref`` gitflows loads the main branch
    Bitbucket reports (deliberate difference: Prefect assumed 'master')."""
    prefect_repo.tag("v1", prefect_repo.myref)
    prefect_repo.commit({"flow.py": "raise RuntimeError('the decoy master branch')\n"}, "decoy", branch="master")
    storage = Bitbucket(project="PROJECT", repo="test-repo", workspace="test-workspace", path="flow.py", ref=ref)
    storage.add_flow(Flow("test"))
    assert storage.get_flow("test").run().results["where"] == ("myref" if ref else "main")


def test_bitbucket_cloud_build_pins_the_commit(cloud_api, prefect_repo):  # noqa: F811
    storage = Bitbucket(project="PROJECT", repo="test-repo", workspace="test-workspace", path="flow.py", ref="myref")
    storage.add_flow(Flow("test"))
    data = storage.build().serialize()
    assert data["sha"] == prefect_repo.myref
    prefect_repo.commit({"flow.py": "raise RuntimeError('moved on')\n"}, "later", branch="myref")
    assert from_dict(data).get_flow("test").run().results["where"] == "myref"


def test_bitbucket_cloud_unknown_ref_is_a_value_error(cloud_api):
    """Prefect: ``ValueError("ref 'nope' not found in 'test-workspace/test-repo'")``."""
    storage = Bitbucket(project="PROJECT", repo="test-repo", workspace="test-workspace", path="flow.py", ref="nope")
    storage.add_flow(Flow("test"))
    with pytest.raises(ValueError, match=r"Bitbucket test-workspace/test-repo .*resolving ref 'nope'") as err:
        storage.get_flow("test")
    assert isinstance(err.value, RefNotFoundError)


def test_bitbucket_cloud_failed_requests_are_runtime_errors(cloud_api, prefect_repo, monkeypatch, caplog):  # noqa: F811
    """Prefect raised ``RuntimeError`` ("Access denied to repository..." / "Error retrieving contents at ...")."""

    def storage(**kw):
        args = {"project": "PROJECT", "repo": "test-repo", "workspace": "test-workspace", "path": "flow.py",
                "ref": "myref", **kw}
        return Bitbucket(**args)

    with pytest.raises(RuntimeError, match=f"flows/missing.py does not exist at commit {prefect_repo.myref}") as err:
        storage(path="flows/missing.py").get_flow("test")
    assert isinstance(err.value, PathNotFoundError)
    with pytest.raises(RuntimeError, match="Bitbucket test-workspace/other-repo") as err:
        storage(repo="other-repo").get_flow("test")
    assert isinstance(err.value, RepoNotFoundError)
    copy = pickle.loads(pickle.dumps(err.value))  # e.g. from an agent's child process: still both
    assert isinstance(copy, RepoNotFoundError) and isinstance(copy, RuntimeError) and str(copy) == str(err.value)
    cloud_api.fail("/refs/branches", 403, {"type": "error", "error": {"message": "Access denied to this repository"}})
    with pytest.raises(RuntimeError, match="access denied .*Access denied to this repository") as err:
        storage().get_flow("test")
    assert isinstance(err.value, AccessDeniedError)
    monkeypatch.setenv("BITBUCKET_CLOUD_APP_PASSWORD", "wrong-app-password")
    with pytest.raises(RuntimeError, match="401.*BITBUCKET_CLOUD_USERNAME / BITBUCKET_CLOUD_APP_PASSWORD") as err:
        storage().get_flow("test")
    assert isinstance(err.value, AuthenticationError)
    assert_secret_hidden("wrong-app-password", error=err.value, caplog=caplog, storage=storage())


def test_bitbucket_cloud_named_app_password_secrets(rsps, prefect_repo, monkeypatch, caplog):  # noqa: F811
    api = FakeBitbucketCloud(rsps, prefect_repo, workspace="test-workspace", slug="test-repo", base=CLOUD_API,
                             username="someone", password=TOKEN)
    monkeypatch.setenv("BB_USER", "someone")
    monkeypatch.setenv("BB_PASSWORD", TOKEN)
    storage = Bitbucket(project="PROJECT", repo="test-repo", workspace="test-workspace", path="flow.py", ref="myref",
                        cloud_username_secret="BB_USER", cloud_app_password_secret="BB_PASSWORD")
    storage.add_flow(Flow("test"))
    assert storage.get_flow("test").name == "test"
    assert set(api.auth_headers) == {basic("someone", TOKEN)}
    assert_secret_hidden(TOKEN, caplog=caplog, storage=storage)


def test_bitbucket_cloud_one_named_secret_takes_the_other_from_the_default_name(rsps, prefect_repo,  # noqa: F811
                                                                                monkeypatch):
    """As in Prefect: a secret not named is read from BITBUCKET_CLOUD_USERNAME / BITBUCKET_CLOUD_APP_PASSWORD."""
    api = FakeBitbucketCloud(rsps, prefect_repo, workspace="test-workspace", slug="test-repo", base=CLOUD_API,
                             username="someone", password=TOKEN)
    monkeypatch.setenv("BB_USER", "someone")
    storage = Bitbucket(project="PROJECT", repo="test-repo", workspace="test-workspace", path="flow.py", ref="myref",
                        cloud_username_secret="BB_USER")
    storage.add_flow(Flow("test"))
    with pytest.raises(ConfigurationError, match="secret 'BITBUCKET_CLOUD_APP_PASSWORD' was not found"):
        storage.get_flow("test")
    assert api.requests == []
    monkeypatch.setenv("BITBUCKET_CLOUD_APP_PASSWORD", TOKEN)
    assert storage.get_flow("test").name == "test"
    assert set(api.auth_headers) == {basic("someone", TOKEN)}


def test_bitbucket_cloud_with_an_access_token(rsps, prefect_repo, monkeypatch, caplog):  # noqa: F811
    """Deliberate difference: Prefect raised ValueError for ``workspace`` + ``access_token_secret``; gitflows
    sends the token to Bitbucket Cloud as a bearer token."""
    api = FakeBitbucketCloud(rsps, prefect_repo, workspace="test-workspace", slug="test-repo", base=CLOUD_API,
                             token=TOKEN)
    monkeypatch.setenv("BB_TOKEN", TOKEN)
    storage = Bitbucket(project="PROJECT", repo="test-repo", workspace="test-workspace", path="flow.py", ref="myref",
                        access_token_secret="BB_TOKEN")
    storage.add_flow(Flow("test"))
    assert storage.get_flow("test").run().results["where"] == "myref"
    assert set(api.auth_headers) == {f"Bearer {TOKEN}"}
    assert_secret_hidden(TOKEN, caplog=caplog, storage=storage)


def test_bitbucket_org_as_host_is_cloud(cloud_api, rsps):  # noqa: F811
    """``host="https://bitbucket.org"`` (Prefect's default) is Bitbucket Cloud: it needs ``workspace``, and
    with it the API at api.bitbucket.org is used."""
    storage = Bitbucket(project="PROJECT", repo="test-repo", host="https://bitbucket.org", path="flow.py")
    with pytest.raises(ConfigurationError, match="https://bitbucket.org is Bitbucket Cloud, which needs workspace="):
        storage.get_flow("test")
    assert len(rsps.calls) == 0
    storage = Bitbucket(project="PROJECT", repo="test-repo", host="https://bitbucket.org", path="flow.py",
                        workspace="test-workspace", ref="myref")
    assert storage.get_flow("test").name == "test"


def test_get_flow_picks_the_named_flow_out_of_the_script(server_api):
    """A storage that recorded no flows loads the named one from ``path``; the name is never a path."""
    storage = Bitbucket(project="PROJECT", repo="test-repo", path="flow.py", host=SERVER, ref="myref")
    assert storage.get_flow("extra").name == "extra"
    assert not any("extra" in p for _, p in server_api.requests)


@pytest.mark.parametrize("workspace", [None, "test-workspace"])
def test_missing_atlassian_is_an_import_error(server_api, cloud_api, monkeypatch, workspace):
    """Prefect raised ImportError ("please ensure you have installed the bitbucket extra")."""
    monkeypatch.setitem(sys.modules, "atlassian", None)  # as if atlassian-python-api were not installed
    storage = Bitbucket(project="PROJECT", repo="test-repo", path="flow.py", workspace=workspace,
                        host=None if workspace else SERVER)
    with pytest.raises(ImportError, match=r"needs atlassian-python-api:"
                                          r" pip install -e '\.\[bitbucket\]' in the gitflows checkout") as err:
        storage.get_flow("test")
    assert isinstance(err.value, LibraryMissingError)
    assert server_api.requests == [] and cloud_api.requests == []


def test_add_flow_without_path_is_refused():
    """Deliberate difference: Prefect recorded ``None`` as the flow's location, which could never load."""
    storage = Bitbucket(project="PROJECT", repo="test-repo", workspace="test-workspace")
    with pytest.raises(ValueError, match=r"Bitbucket storage for flow 'test' needs path="):
        storage.add_flow(Flow("test"))
    assert "test" not in storage


def test_bitbucket_server_without_a_token_sends_no_authorization_header(rsps, prefect_repo):  # noqa: F811
    """Deliberate difference: Prefect sent ``Authorization: Bearer `` (empty); gitflows reads a public
    repository with no header."""
    api = FakeBitbucketServer(rsps, prefect_repo, project="PROJECT", slug="test-repo", base=SERVER)
    storage = Bitbucket(project="PROJECT", repo="test-repo", path="flow.py", host=SERVER, ref="myref")
    assert storage.get_flow("test").name == "test"
    assert api.auth_headers and set(api.auth_headers) == {None}


def test_bitbucket_cloud_finds_a_branch_past_the_first_page(cloud_api, prefect_repo):  # noqa: F811
    """Deliberate difference: Prefect read one page of branches (10) and of tags, and raised ValueError for a
    ref listed later; gitflows asks for the ref by name and follows every page."""
    for i in range(15):
        prefect_repo.git("branch", f"a-branch-{i:02d}", prefect_repo.main)
    prefect_repo.git("branch", "zz-last", prefect_repo.myref)
    storage = Bitbucket(project="PROJECT", repo="test-repo", workspace="test-workspace", path="flow.py",
                        ref="zz-last")
    assert storage.get_flow("test").run().results["where"] == "myref"
