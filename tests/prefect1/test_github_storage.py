"""Prefect 1.4.1 tests/storage/test_github_storage.py, ported to gitflows.

Prefect mocked ``github.Github``; here a fake GitHub REST API (tests/fakes/github_api.py) answers
from a real git repository, and each test asserts what a user sees: the flow loaded back at the
right commit, or the error.

Deliberate differences (docs/prefect1.md, "GitHub, GitLab, Bitbucket, CodeCommit"):
- a missing repository, ref or file raises gitflows' ``RepoNotFoundError`` / ``RefNotFoundError`` /
  ``PathNotFoundError`` (the message says what Prefect logged) instead of PyGithub's
  ``UnknownObjectException``.
- ``GitHub(repo)`` without ``path`` is accepted (Prefect: ``TypeError``), and ``add_flow`` then refuses the
  flow (``ConfigurationError``, a ``ValueError``);
- ``path="/flow.py"`` (a leading ``/``, as in Prefect's docs) is the repository root; ``add_flow`` returns
  ``"flow.py"``;
- ``build()`` pins the commit: a later load reads that commit, not where the branch went.

Prefect tests checked through ``storage._get_github_client()`` and ``Github(...)`` call arguments
(``test_github_access_token_secret``, ``test_github_access_token_errors_if_provided_and_not_found``,
``test_github_base_url``); gitflows has no client getter, so the ports load a flow and assert the
token the server received, the server that answered, and the error for a missing secret.
"""

from __future__ import annotations

import sys

import pytest

from gitflows import Flow
from gitflows.errors import (
    FlowNotFoundError,
    LibraryMissingError,
    PathNotFoundError,
    RefNotFoundError,
    RepoNotFoundError,
    SecretNotFoundError,
)
from gitflows.storage import GitHub, from_dict
from tests.fakes.github_api import FakeGitHub
from tests.hosts.conftest import TOKEN, assert_secret_hidden, fast_retries, prefect_repo, rsps  # noqa: F401

BASE = "http://127.0.0.1:8771/api/v3"


@pytest.fixture
def github_api(rsps, prefect_repo):  # noqa: F811
    """Prefect's ``github_client`` fixture: repo 'test/repo' whose default branch is 'main'."""
    return FakeGitHub(rsps, prefect_repo, full_name="test/repo", base=BASE)


def paths(api) -> list[str]:
    return [p for _, p in api.requests]


def test_create_github_storage():
    storage = GitHub(repo="test/repo", path="flow.py")
    assert storage
    assert storage.logger


def test_create_github_storage_init_args():
    storage = GitHub(
        repo="test/repo",
        path="flow.py",
        ref="my_branch",
        base_url="https://some-url",
        secrets=["auth"],
    )
    assert storage
    assert storage.flows == dict()
    assert storage.repo == "test/repo"
    assert storage.path == "flow.py"
    assert storage.ref == "my_branch"
    assert storage.base_url == "https://some-url"
    assert storage.secrets == ["auth"]


def test_serialize_github_storage():
    storage = GitHub(repo="test/repo", path="flow.py", secrets=["auth"])
    serialized_storage = storage.serialize()

    assert serialized_storage["type"] == "GitHub"
    assert serialized_storage["repo"] == "test/repo"
    assert serialized_storage["path"] == "flow.py"
    assert serialized_storage["secrets"] == ["auth"]


@pytest.mark.parametrize("secret_name,secret_arg", [("TEST", "TEST"), ("GITHUB_ACCESS_TOKEN", None)])
def test_github_access_token_secret(rsps, prefect_repo, monkeypatch, secret_name, secret_arg, caplog):  # noqa: F811
    """The named secret (or the default name GITHUB_ACCESS_TOKEN) is the token GitHub receives, in a header."""
    api = FakeGitHub(rsps, prefect_repo, full_name="test/repo", base=BASE, token=TOKEN)
    monkeypatch.setenv(secret_name, TOKEN)
    storage = GitHub(repo="test/repo", path="flow.py", access_token_secret=secret_arg, base_url=BASE)
    storage.add_flow(Flow("test"))
    assert storage.get_flow("test").name == "test"
    assert api.auth_headers and set(api.auth_headers) == {f"token {TOKEN}"}
    assert all(TOKEN not in p for p in paths(api))
    assert_secret_hidden(TOKEN, caplog=caplog, storage=storage)


def test_github_access_token_errors_if_provided_and_not_found(github_api):
    storage = GitHub(repo="test/repo", path="flow.py", access_token_secret="MISSING", base_url=BASE)
    storage.add_flow(Flow("test"))
    with pytest.raises(SecretNotFoundError, match="MISSING"):
        storage.get_flow("test")
    assert github_api.requests == []


def test_github_base_url(rsps, prefect_repo, monkeypatch):  # noqa: F811
    """``base_url`` is the API root the requests go to (GitHub Enterprise: ``https://host/api/v3``)."""
    other = "http://127.0.0.1:8772/api/v3"
    api = FakeGitHub(rsps, prefect_repo, full_name="test/repo", base=other, token=TOKEN)
    monkeypatch.setenv("TEST", TOKEN)
    storage = GitHub(repo="test/repo", path="flow.py", access_token_secret="TEST", base_url=other)
    storage.add_flow(Flow("test"))
    assert storage.get_flow("test").name == "test"
    assert paths(api)[0] == "/repos/test/repo"


def test_github_default_base_url_is_api_github_com(rsps, prefect_repo):  # noqa: F811
    """Without ``base_url``: https://api.github.com (answered by the fake through `responses`; nothing leaves
    the machine)."""
    class AtGitHubCom(FakeGitHub):
        api = "https://api.github.com"  # the URLs in payloads, as GitHub writes them

    # requests sees PyGithub's URLs with the port spelled out
    api = AtGitHubCom(rsps, prefect_repo, full_name="test/repo", base="https://api.github.com:443")
    storage = GitHub(repo="test/repo", path="flow.py")
    storage.add_flow(Flow("test"))
    assert storage.get_flow("test").run().results["where"] == "main"
    assert paths(api)[0] == "/repos/test/repo"


def test_add_flow_to_github_storage():
    storage = GitHub(repo="test/repo", path="flow.py")

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f) == "flow.py"
    assert f.name in storage


def test_add_flow_to_github_already_added():
    storage = GitHub(repo="test/repo", path="flow.py")

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f) == "flow.py"
    assert f.name in storage

    with pytest.raises(ValueError, match='Name conflict: Flow with the name "test" is already present'):
        storage.add_flow(f)


@pytest.mark.parametrize("ref", [None, "myref"])
def test_get_flow(github_api, prefect_repo, ref, caplog):  # noqa: F811
    caplog.set_level("INFO")
    storage = GitHub(repo="test/repo", path="flow.py", ref=ref, base_url=BASE)
    storage.add_flow(Flow("test"))

    f = storage.get_flow("test")
    requested = paths(github_api)
    commit = prefect_repo.myref if ref else prefect_repo.main
    # Prefect: get_repo("test/repo"), get_commit(ref or the default branch "main"), contents at that commit;
    # gitflows asks for the repository only when it needs the default branch
    assert (requested[0] == "/repos/test/repo") == (ref is None)
    assert any(p.startswith(f"/repos/test/repo/commits/{ref or 'main'}") for p in requested)
    assert f"/repos/test/repo/contents/?ref={commit}" in requested  # the root folder only, never the whole tree

    assert f.name == "test"
    state = f.run()
    assert state.is_successful()
    assert state.results["where"] == (ref or "main")  # the flow as it is at that commit

    msg = "Downloading flow from GitHub storage - repo: 'test/repo', path: 'flow.py'"
    if ref is not None:
        msg += f", ref: {ref!r}"
    assert msg in caplog.text
    assert f"Flow successfully downloaded. Using commit: {commit}" in caplog.text


def test_get_flow_picks_the_named_flow_out_of_the_script(github_api):
    """The name selects a flow inside ``path``; it is never fetched as a path of its own."""
    storage = GitHub(repo="test/repo", path="flow.py", base_url=BASE)
    assert storage.get_flow("extra").name == "extra"
    assert storage.get_flow(flow_name="test").name == "test"
    assert not any("extra" in p or p.endswith("/test") for p in paths(github_api))


def test_get_flow_of_a_flow_not_in_storage_fetches_nothing(github_api):
    storage = GitHub(repo="test/repo", path="flow.py", base_url=BASE)
    storage.add_flow(Flow("test"))
    with pytest.raises(ValueError, match="Flow is not contained in this Storage") as err:
        storage.get_flow("extra")
    assert isinstance(err.value, FlowNotFoundError)
    assert github_api.requests == []


def test_get_flow_after_build_loads_the_pinned_commit(github_api, prefect_repo):  # noqa: F811
    storage = GitHub(repo="test/repo", path="flow.py", ref="myref", base_url=BASE)
    storage.add_flow(Flow("test"))
    storage.build()
    data = storage.serialize()
    assert data["sha"] == prefect_repo.myref
    prefect_repo.commit({"flow.py": "raise RuntimeError('moved on')\n"}, "later", branch="myref")
    assert from_dict(data).get_flow("test").run().results["where"] == "myref"


def test_get_flow_path_with_a_leading_slash(github_api):
    """Prefect's docs wrote ``path="/flows/flow.py"``: the leading ``/`` is the repository root."""
    storage = GitHub(repo="test/repo", path="/flow.py", base_url=BASE)
    assert storage.add_flow(Flow("test")) == "flow.py"
    assert storage.get_flow("test").name == "test"


def test_get_flow_missing_repo(github_api):
    storage = GitHub(repo="test/other", path="flow.py", base_url=BASE)
    storage.add_flow(Flow("test"))

    with pytest.raises(RepoNotFoundError) as err:
        storage.get_flow("test")

    assert "GitHub test/other" in str(err.value)
    assert "the repository does not exist or the token cannot see it" in str(err.value)


@pytest.mark.parametrize("ref", [None, "myref"])
def test_get_flow_missing_ref(github_api, prefect_repo, ref):  # noqa: F811
    if ref is None:
        prefect_repo.default_branch = "gone"  # the repository says its default branch is one that does not exist
    else:
        prefect_repo.git("branch", "-D", "myref")

    storage = GitHub(repo="test/repo", path="flow.py", ref=ref, base_url=BASE)
    storage.add_flow(Flow("test"))

    ref = ref or "gone"

    with pytest.raises(RefNotFoundError) as err:
        storage.get_flow("test")

    assert f"resolving ref {ref!r}" in str(err.value) and "GitHub test/repo" in str(err.value)


@pytest.mark.parametrize("ref", [None, "myref"])
def test_get_flow_missing_file(github_api, prefect_repo, ref):  # noqa: F811
    storage = GitHub(repo="test/repo", path="flows/missing.py", ref=ref, base_url=BASE)
    storage.add_flow(Flow("test"))

    commit = prefect_repo.myref if ref else prefect_repo.main

    with pytest.raises(PathNotFoundError) as err:
        storage.get_flow("test")

    assert isinstance(err.value, FileNotFoundError)
    assert f"GitHub test/repo ({BASE}): flows/missing.py does not exist at commit {commit}" in str(err.value)


def test_missing_pygithub_is_an_import_error(github_api, monkeypatch):
    """Prefect raised ImportError ("please ensure you have installed the github extra")."""
    monkeypatch.setitem(sys.modules, "github", None)  # as if PyGithub were not installed
    storage = GitHub(repo="test/repo", path="flow.py", base_url=BASE)
    with pytest.raises(ImportError, match=r"needs PyGithub: pip install -e '\.\[github\]' in the gitflows checkout") as err:
        storage.get_flow("test")
    assert isinstance(err.value, LibraryMissingError)
    assert github_api.requests == []


def test_add_flow_without_path_is_refused():
    """Deliberate difference: Prefect required ``path`` (a TypeError without it); gitflows lets a storage be
    made without it, and refuses to record a flow that could never load."""
    storage = GitHub(repo="test/repo")
    with pytest.raises(ValueError, match=r"GitHub storage for flow 'test' needs path="):
        storage.add_flow(Flow("test"))
    assert "test" not in storage


def test_get_flow_with_a_ref_2020_api(github_api, prefect_repo):  # noqa: F811
    """The 2020 API: ``get_flow(flow_location, ref=...)`` loads at that ref, even on a pinned storage."""
    storage = GitHub(repo="test/repo", path="flow.py", base_url=BASE)
    location = storage.add_flow(Flow("test"))
    storage.build()
    assert storage.get_flow(location).run().results["where"] == "main"
    assert storage.get_flow(location, ref="myref").run().results["where"] == "myref"
    assert storage.get_flow("test", ref=prefect_repo.myref).run().results["where"] == "myref"
    with pytest.raises(TypeError, match="unexpected keyword argument.*: colour"):
        storage.get_flow("test", colour="blue")
