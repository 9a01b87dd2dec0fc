"""Port of Prefect 1.4.1 tests/storage/test_git_storage.py to gitflows' ``Git`` storage.

Prefect mocked ``TemporaryGitRepo`` and ``extract_flow_from_file``; here every load goes to a real
git server on 127.0.0.1 (``git http-backend`` behind the wrapper of tests/servers/git_http.py, which
checks basic / bearer auth and records every Authorization header, and sshd with key auth), and the
tests assert what a user sees: the flow loaded at the right ref, the user name and token the server
received, the warnings raised.

Not ported (no user-visible meaning):
- the ``fake_temp_repo`` / ``fake_extract_flow_from_file`` fixtures and the ``assert_called_with``
  checks of ``test_get_flow`` / ``test_get_flow_file_not_found``: mock call shapes; what they stood
  for (branch / tag / commit honoured, the flow extracted from ``flow_path``) is asserted against the
  server instead.
"""

from __future__ import annotations

import base64
import json
import warnings

import pytest

from gitflows import Flow
from gitflows.errors import AuthenticationError, PathNotFoundError, SecretNotFoundError
from gitflows.storage import from_dict
from gitflows.storage.git import Git
from tests.fakes.gitrepo import FLOW_WITH_HELPERS, GitRepo
from tests.git.conftest import fast_retries  # noqa: F401  (autouse: quick retries)
from tests.servers.fixtures import SSHServer, make_bare, start_http

TOKEN = "gitTok3n-S3cret-Value-0123456789"
SSH_WARNING = ("Git Storage initialized with `use_ssh = True` and `git_token_secret_name` provided. SSH will be used "
               "to clone the repository. `git_token_secret_name` will be ignored")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def source(tmp_path):
    repo = GitRepo(tmp_path / "source", default_branch="trunk")
    repo.v1 = repo.commit(FLOW_WITH_HELPERS, "v1")
    repo.tag("v0.1")
    repo.v2 = repo.commit({"flows/lib/fmt.py": "def label(rows):\n    return 'v2:' + ','.join(map(str, rows))\n"},
                          "v2", branch="my_branch")
    return repo


@pytest.fixture
def served(tmp_path, source):
    """The repository served as ``acme/flows``: <root>/acme/flows.git."""
    root = tmp_path / "served"
    (root / "acme").mkdir(parents=True)
    make_bare(str(source.path), str(root / "acme" / "flows.git"))
    return root


@pytest.fixture
def server(served, monkeypatch):
    """git http-backend that accepts user ``acme`` (the repo owner) with TOKEN; other credentials: 401."""
    srv = start_http(served, username="acme", password=TOKEN)
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    yield srv
    srv.stop()


def results(flow) -> str:
    return flow.run().results["transform"]


def test_create_git_storage():
    storage = Git(repo="test/repo", flow_path="flow.py")
    assert storage
    assert storage.logger


def test_create_git_storage_init_args():
    storage = Git(
        flow_path="flow.py",
        repo="test/repo",
        repo_host="bitbucket.org",
        flow_name="my-flow",
        git_token_secret_name="MY_TOKEN",
        git_token_username="my_user",
        branch_name="my_branch",
        tag=None,
        commit=None,
        clone_depth=1,
        use_ssh=False,
        format_access_token=True,
    )
    assert storage
    assert storage.flows == dict()
    assert storage.flow_path == "flow.py"
    assert storage.repo == "test/repo"
    assert storage.repo_host == "bitbucket.org"
    assert storage.flow_name == "my-flow"
    assert storage.git_token_secret_name == "MY_TOKEN"
    assert storage.git_token_username == "my_user"
    assert storage.branch_name == "my_branch"
    assert storage.tag is None
    assert storage.commit is None
    assert storage.clone_depth == 1
    assert storage.use_ssh is False
    assert storage.format_access_token is True


def test_init_args_in_prefects_positional_order():
    storage = Git("flow.py", "test/repo", "git.example.com", "my-flow", "MY_TOKEN", "my_user", "MY_URL", "my_branch")
    assert (storage.repo_host, storage.flow_name, storage.git_token_secret_name, storage.git_token_username,
            storage.git_clone_url_secret_name, storage.branch_name) == \
        ("git.example.com", "my-flow", "MY_TOKEN", "my_user", "MY_URL", "my_branch")


def test_git_token_username_defaults_to_the_repo_owner():
    assert Git(repo="test/repo", flow_path="flow.py").git_token_username == "test"
    assert Git(repo="test/repo", flow_path="flow.py", git_token_username="bob").git_token_username == "bob"
    assert Git(flow_path="flow.py", git_clone_url_secret_name="URL").git_token_username is None


def test_create_git_storage_with_use_ssh_and_git_token_secret_name_logs_warning(caplog):
    """Deliberate difference: Prefect's warning is also raised with warnings.warn (seen without logging set up)."""
    with pytest.warns(UserWarning, match="`git_token_secret_name` will be ignored"):
        Git(
            flow_path="flow.py",
            repo="test/repo",
            git_token_secret_name="MY_SECRET",
            use_ssh=True,
        )

    assert SSH_WARNING in caplog.text


def test_use_ssh_ignores_the_token_and_loads_over_ssh(tmp_path, served, monkeypatch, caplog):
    """use_ssh with a token secret name: warned, not failed (as Prefect); the token secret is never even
    looked up (it does not exist here), the flow comes over ssh with the user's keys."""
    ssh_dir = tmp_path / "ssh"
    ssh_dir.mkdir()
    sshd = SSHServer(ssh_dir)
    try:
        # git@{repo_host}:{repo}.git, as Prefect builds it; the ssh command picks port and login user
        monkeypatch.setenv("GIT_SSH_COMMAND", f"{sshd.ssh_command} -p {sshd.port} -l {sshd.user}")
        with pytest.warns(UserWarning, match="will be ignored"):
            storage = Git(flow_path="flows/etl.py", repo=str(served / "acme" / "flows"), repo_host="127.0.0.1",
                          git_token_secret_name="NOT_DEFINED_ANYWHERE", use_ssh=True, branch_name="trunk")
        assert storage.git_clone_url == f"git@127.0.0.1:{served}/acme/flows.git"
        assert results(storage.get_flow("etl")) == "v1:0,10,20"
        assert SSH_WARNING in caplog.text
    finally:
        sshd.stop()


def test_create_git_storage_with_git_clone_url_secret_name_and_other_repo_params_logs_warning(
    caplog,
):
    Git(
        flow_path="flow.py",
        repo="test/repo",
        git_clone_url_secret_name="MY_SECRET",
    )

    assert (
        "Git storage initialized with a `git_clone_url_secret_name`. The value of this Secret will be used to clone "
        "the repository, ignoring"
        in caplog.text
    )


def test_git_clone_url_secret_name_alone_logs_no_warning(caplog):
    """Deliberate difference: Prefect logged the warning for every storage with a clone URL secret
    (``repo_host`` has a default); gitflows only when an argument it ignores was given."""
    Git(flow_path="flow.py", git_clone_url_secret_name="MY_SECRET")
    assert "git_clone_url_secret_name" not in caplog.text
    Git(flow_path="flow.py", git_clone_url_secret_name="MY_SECRET", use_ssh=True)
    assert "ignoring `repo`" in caplog.text


def test_git_clone_url_secret_overrides_repo_and_token(server, source, monkeypatch, caplog):
    """The clone URL is used, not repo / repo_host / the token arguments (Prefect's meaning); credentials
    inside the URL reach the server in the Authorization header, never in a request line."""
    monkeypatch.setenv("MY_GIT_URL", server.url.replace("http://", f"http://acme:{TOKEN}@") + "/acme/flows.git")
    storage = Git(flow_path="flows/etl.py", repo="someone/else", repo_host="nowhere.invalid",
                  git_token_secret_name="NOT_DEFINED_ANYWHERE", git_token_username="ignored",
                  git_clone_url_secret_name="MY_GIT_URL", branch_name="trunk")
    assert "ignoring `repo`, `repo_host`" in caplog.text
    assert results(storage.get_flow("etl")) == "v1:0,10,20"
    assert set(server.stats.auth_headers) == {basic("acme", TOKEN)}
    assert not any(TOKEN in line for line in server.stats.requests)
    assert storage.git_clone_url == f"{server.url}/acme/flows.git"  # without the credentials


def test_a_token_next_to_a_clone_url_without_credentials_is_not_sent(server, monkeypatch):
    """As in Prefect, git_clone_url_secret_name overrides git_token_secret_name: the token is not sent,
    and the 401 says so and what to write instead."""
    monkeypatch.setenv("MY_GIT_URL", f"{server.url}/acme/flows.git")
    storage = Git(flow_path="flows/etl.py", git_token_secret_name="MY_TOKEN", git_clone_url_secret_name="MY_GIT_URL")
    with pytest.raises(AuthenticationError, match=r"HTTP 401.*no credentials.*'MY_TOKEN' is ignored.*repo_host="):
        storage.get_flow("etl")
    assert set(server.stats.auth_headers) == {None}


def test_repo_is_optional_with_a_git_clone_url_secret(served, monkeypatch):
    anonymous = start_http(served)
    try:
        monkeypatch.setenv("GIT_CLONE_URL_SECRET", f"{anonymous.url}/acme/flows.git")
        storage = Git(flow_path="flows/etl.py", git_clone_url_secret_name="GIT_CLONE_URL_SECRET", tag="v0.1")
        assert storage.repo is None
        assert results(storage.get_flow("etl")) == "v1:0,10,20"
        assert set(anonymous.stats.auth_headers) == {None}
    finally:
        anonymous.stop()


def test_create_git_storage_without_repo_or_git_clone_url_secret_name_errors():
    with pytest.raises(
        ValueError,
        match="Either `repo` or `git_clone_url_secret_name` must be provided",
    ):
        Git(flow_path="flow.py")


def test_create_git_storage_with_tag_and_branch_name_errors():
    with pytest.raises(ValueError, match="only one of the following parameters: `branch_name`, `tag`, `commit`"):
        Git(flow_path="flow.py", repo="test/repo", branch_name="my_branch", tag="v0.1")


@pytest.mark.parametrize("refs", [{"branch_name": "b", "commit": "a" * 40}, {"tag": "t", "commit": "a" * 40},
                                  {"branch_name": "b", "tag": "t", "commit": "a" * 40}])
def test_create_git_storage_with_commit_and_another_ref_errors(refs):
    with pytest.raises(ValueError, match="only one of the following parameters") as err:
        Git(flow_path="flow.py", repo="test/repo", **refs)
    assert "commit=" in str(err.value)


def test_serialize_git_storage():
    storage = Git(
        flow_path="flow.py",
        repo="test/repo",
        repo_host="bitbucket.org",
        flow_name="my-flow",
        git_token_secret_name="MY_TOKEN",
        git_token_username="my_user",
        git_clone_url_secret_name="MY_GIT_URL",
        branch_name="my_branch",
        tag=None,
        commit=None,
        clone_depth=1,
        use_ssh=False,
        format_access_token=True,
    )
    serialized_storage = storage.serialize()

    assert serialized_storage["type"] == "Git"
    assert serialized_storage["repo"] == "test/repo"
    assert serialized_storage["flow_path"] == "flow.py"
    assert serialized_storage["repo_host"] == "bitbucket.org"
    assert serialized_storage["flow_name"] == "my-flow"
    assert serialized_storage["git_token_secret_name"] == "MY_TOKEN"
    assert serialized_storage["git_token_username"] == "my_user"
    assert serialized_storage["git_clone_url_secret_name"] == "MY_GIT_URL"
    assert serialized_storage["branch_name"] == "my_branch"
    assert serialized_storage["tag"] is None
    assert serialized_storage["commit"] is None
    assert serialized_storage["clone_depth"] == 1
    assert serialized_storage["use_ssh"] is False
    assert serialized_storage["format_access_token"] is True
    assert from_dict(json.loads(json.dumps(serialized_storage))).serialize() == serialized_storage


def test_add_flow_to_git_storage():
    storage = Git(repo="test/repo", flow_path="flow.py")

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f) == "flow.py"
    assert f.name in storage


def test_add_flow_to_git_already_added():
    storage = Git(repo="test/repo", flow_path="flow.py")

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f) == "flow.py"
    assert f.name in storage

    with pytest.raises(ValueError, match='Name conflict: Flow with the name "test" is already present'):
        storage.add_flow(f)


# Prefect's rows, with what Prefect returned as git_clone_url (credentials inside) split into what
# gitflows returns (the URL without credentials) and the credentials it sends instead in the
# Authorization header (``git_token_secret``, Prefect's formatting: "user:token", or the token as given).
@pytest.mark.parametrize(
    "repo_host, repo, access_token_secret_name, access_token_secret, access_token_username, use_ssh, "
    "format_access_token, git_clone_url_secret_name, git_clone_url_secret, prefect_git_clone_url, "
    "expected_git_clone_url, expected_credentials",
    [
        # no access token secret provided
        ("github.com", "my/repo", None, None, None, False, True, None, None,
         "https://@github.com/my/repo.git", "https://github.com/my/repo.git", ""),
        # github + access token
        ("github.com", "user/repo", "MY_TOKEN", "MY_SECRET_TOKEN", None, False, True, None, None,
         "https://user:MY_SECRET_TOKEN@github.com/user/repo.git", "https://github.com/user/repo.git",
         "user:MY_SECRET_TOKEN"),
        # github + access token + custom token username
        ("github.com", "user/repo", "MY_TOKEN", "MY_SECRET_TOKEN", "another_git_user", False, True, None, None,
         "https://another_git_user:MY_SECRET_TOKEN@github.com/user/repo.git", "https://github.com/user/repo.git",
         "another_git_user:MY_SECRET_TOKEN"),
        # bitbucket + access token
        ("bitbucket.org", "user/repo", "MY_TOKEN", "MY_SECRET_TOKEN", None, False, True, None, None,
         "https://user:MY_SECRET_TOKEN@bitbucket.org/user/repo.git", "https://bitbucket.org/user/repo.git",
         "user:MY_SECRET_TOKEN"),
        # gitlab + access token
        ("gitlab.com", "user/repo", "MY_TOKEN", "MY_SECRET_TOKEN", None, False, True, None, None,
         "https://user:MY_SECRET_TOKEN@gitlab.com/user/repo.git", "https://gitlab.com/user/repo.git",
         "user:MY_SECRET_TOKEN"),
        # unknown hostname + access token
        ("randomsite.com", "user/repo", "MY_TOKEN", "MY_SECRET_TOKEN", None, False, True, None, None,
         "https://user:MY_SECRET_TOKEN@randomsite.com/user/repo.git", "https://randomsite.com/user/repo.git",
         "user:MY_SECRET_TOKEN"),
        # ssh (the token is ignored)
        ("github.com", "user/repo", "MY_TOKEN", "MY_SECRET_TOKEN", None, True, True, None, None,
         "git@github.com:user/repo.git", "git@github.com:user/repo.git", None),
        # skip access token formatting
        ("github.com", "user/repo", "MY_TOKEN", "MY_SECRET_TOKEN", None, False, False, None, None,
         "https://MY_SECRET_TOKEN@github.com/user/repo.git", "https://github.com/user/repo.git", "MY_SECRET_TOKEN"),
        # provide git clone url secret name directly
        (None, None, None, None, None, False, True, "GIT_CLONE_URL_SECRET", "https://my-secret-url.com/repo.git",
         "https://my-secret-url.com/repo.git", "https://my-secret-url.com/repo.git", None),
        # a clone url secret with credentials in it (gitflows: moved to the Authorization header)
        (None, None, None, None, None, False, True, "GIT_CLONE_URL_SECRET", "https://bob:pw@my-secret-url.com/r.git",
         "https://bob:pw@my-secret-url.com/r.git", "https://my-secret-url.com/r.git", None),
    ],
)
def test_get_git_clone_url(
    monkeypatch,
    repo_host,
    repo,
    access_token_secret_name,
    access_token_secret,
    access_token_username,
    use_ssh,
    format_access_token,
    git_clone_url_secret_name,
    git_clone_url_secret,
    prefect_git_clone_url,
    expected_git_clone_url,
    expected_credentials,
):
    """Deliberate difference: Prefect's git_clone_url carried the token (``prefect_git_clone_url``);
    gitflows' is the URL without credentials, which travel in the Authorization header instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ssh row warns that the token is ignored (tested above)
        storage = Git(
            repo=repo,
            flow_path="foo.py",
            repo_host=repo_host,
            git_token_secret_name=access_token_secret_name,
            git_token_username=access_token_username,
            git_clone_url_secret_name=git_clone_url_secret_name,
            use_ssh=use_ssh,
            format_access_token=format_access_token,
        )
    for name, value in ((access_token_secret_name, access_token_secret),
                        (git_clone_url_secret_name, git_clone_url_secret)):
        if name:
            monkeypatch.setenv(name, value)
    assert storage.git_clone_url == expected_git_clone_url
    assert "@my-secret-url" not in storage.git_clone_url and "MY_SECRET_TOKEN" not in storage.git_clone_url
    if expected_credentials is not None:
        assert storage.git_token_secret == expected_credentials


@pytest.mark.parametrize(
    "kwargs, secret, server_auth, sent",
    [
        # the repo owner, as Prefect 1.4.1 (gitflows used to pick a user name per host)
        ({}, TOKEN, {"username": "acme", "password": TOKEN}, basic("acme", TOKEN)),
        ({"git_token_username": "x-token-auth"}, TOKEN, {"username": "x-token-auth", "password": TOKEN},
         basic("x-token-auth", TOKEN)),
        # format_access_token=False: the secret as given; a bare token as the user name (https://TOKEN@host)
        ({"format_access_token": False}, TOKEN, {"username": TOKEN, "password": ""}, basic(TOKEN, "")),
        ({"format_access_token": False}, f"bob:{TOKEN}", {"username": "bob", "password": TOKEN}, basic("bob", TOKEN)),
        # ... or a bearer token (Bitbucket Data Center project / repository tokens accept nothing else)
        ({"format_access_token": False}, f"Bearer {TOKEN}", {"bearer": TOKEN}, f"Bearer {TOKEN}"),
    ],
)
def test_the_server_receives_prefects_user_name_and_token(served, monkeypatch, caplog, kwargs, secret,
                                                          server_auth, sent):
    """The credentials Prefect put in the clone URL, received by the server. Deliberate difference: they
    travel in the Authorization header, never in a URL; a ``Bearer <token>`` secret is sent as a bearer token."""
    caplog.set_level("DEBUG")
    srv = start_http(served, **server_auth)
    try:
        monkeypatch.setenv("MY_TOKEN", secret)
        storage = Git(flow_path="flows/etl.py", repo="acme/flows", repo_host=srv.url, git_token_secret_name="MY_TOKEN",
                      branch_name="trunk", **kwargs)
        assert results(storage.get_flow("etl")) == "v1:0,10,20"
        assert set(srv.stats.auth_headers) == {sent}
        assert not any(TOKEN in line for line in srv.stats.requests)
        assert TOKEN not in caplog.text + repr(storage) + json.dumps(storage.serialize())
    finally:
        srv.stop()


def test_a_user_name_the_server_refuses_says_which_was_sent(served, monkeypatch):
    """A server that wants another user name for the token (here x-access-token): the 401 names the
    secret and the user name sent, and says how to change it."""
    srv = start_http(served, username="x-access-token", password=TOKEN)
    try:
        monkeypatch.setenv("MY_TOKEN", TOKEN)
        storage = Git(flow_path="flows/etl.py", repo="acme/flows", repo_host=srv.url, git_token_secret_name="MY_TOKEN")
        with pytest.raises(AuthenticationError, match=r"HTTP 401.*MY_TOKEN.*user name 'acme'.*git_token_username=") \
                as err:
            storage.get_flow("etl")
        assert TOKEN not in str(err.value)
        assert set(srv.stats.auth_headers) == {basic("acme", TOKEN)}
        fixed = Git(flow_path="flows/etl.py", repo="acme/flows", repo_host=srv.url, git_token_secret_name="MY_TOKEN",
                    git_token_username="x-access-token")
        assert results(fixed.get_flow("etl")) == "v1:0,10,20"
    finally:
        srv.stop()


def test_git_access_token_errors_if_provided_and_not_found(server):
    storage = Git(repo="acme/flows", repo_host=server.url, flow_path="flows/etl.py", git_token_secret_name="MISSING")
    with pytest.raises(SecretNotFoundError, match="MISSING"):
        storage.git_token_secret
    with pytest.raises(ValueError, match="MISSING"):  # and when a flow is loaded
        storage.get_flow()
    assert server.stats.requests == []  # nothing was sent without the token


def test_get_flow(server):
    storage = Git(repo="acme/flows", repo_host=server.url, flow_path="flows/etl.py", flow_name="etl",
                  git_token_secret_name="MY_TOKEN")
    storage.add_flow(Flow("etl"))
    flow = storage.get_flow("etl")
    assert flow.name == "etl"
    assert results(flow) == "v1:0,10,20"  # the default branch (trunk), with the script's sibling modules


@pytest.mark.parametrize("ref", ["branch", "tag", "commit"])
def test_get_flow_at_the_ref_asked_for(server, source, ref):
    """What Prefect's TemporaryGitRepo(branch_name=, tag=, commit=) call stood for.

    Deliberate difference: ``commit`` is honoured (Prefect checked out only a branch or tag, so the
    commit asked for never ran); ``clone_depth`` is accepted and ignored (one commit is fetched)."""
    kwargs, expected = {"branch": ({"branch_name": "my_branch"}, "v2:0,10,20"),
                        "tag": ({"tag": "v0.1"}, "v1:0,10,20"),
                        "commit": ({"commit": source.v2}, "v2:0,10,20")}[ref]
    storage = Git(repo="acme/flows", repo_host=server.url, flow_path="flows/etl.py", git_token_secret_name="MY_TOKEN",
                  clone_depth=5, **kwargs)
    storage.add_flow(Flow("etl"))
    assert results(storage.get_flow("etl")) == expected


def test_get_flow_returns_the_flow_asked_for(server):
    """Deliberate difference: Prefect 1.4.1 checked the name was in storage.flows, then extracted
    storage.flow_name from the file (or the first flow), whatever name was asked for."""
    storage = Git(repo="acme/flows", repo_host=server.url, flow_path="flows/etl.py", flow_name="etl",
                  git_token_secret_name="MY_TOKEN")
    storage.add_flow(Flow("etl"))
    storage.add_flow(Flow("other"))
    assert storage.get_flow("other").name == "other"  # Prefect: 'etl'
    assert storage.get_flow("etl").name == "etl"
    assert storage.get_flow().name == "etl"  # no name: the storage's flow_name
    with pytest.raises(ValueError, match="Flow is not contained in this Storage"):
        storage.get_flow("nope")
    # a storage configured by hand on the runner (no recorded flows): flow_name, else the flow asked for
    by_hand = Git(repo="acme/flows", repo_host=server.url, flow_path="flows/etl.py", flow_name="other",
                  git_token_secret_name="MY_TOKEN")
    assert by_hand.get_flow().name == "other"
    assert by_hand.get_flow("etl").name == "etl"


def test_get_flow_file_not_found(server):
    storage = Git(repo="acme/flows", repo_host=server.url, flow_path="flows/missing.py", flow_name="my-flow",
                  git_token_secret_name="MY_TOKEN")
    storage.add_flow(Flow("my-flow"))
    with pytest.raises(FileNotFoundError, match="flows/missing.py") as err:
        storage.get_flow("my-flow")
    assert isinstance(err.value, PathNotFoundError)
