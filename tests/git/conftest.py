from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest

from gitflows.storage.git import Git

from ..fakes.gitrepo import FLOW_WITH_HELPERS, GitRepo
from ..servers.fixtures import GitDaemon, SSHServer, make_bare, start_http
from ..servers.git_http import configure

TOKEN = "gitTok3n-S3cret-Value-0123456789"
TRANSPORTS = ["http", "http-nofilter", "daemon", "ssh"]


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setenv("GITFLOWS_RETRY_BACKOFF", "0.01")


@pytest.fixture
def source(tmp_path):
    repo = GitRepo(tmp_path / "source", default_branch="trunk")
    repo.v1 = repo.commit(FLOW_WITH_HELPERS, "v1")
    return repo


@pytest.fixture
def bare(tmp_path, source):
    root = tmp_path / "served"
    root.mkdir()
    path = root / "flows.git"
    make_bare(str(source.path), str(path))
    return path


def sync(source: GitRepo, bare, prune: bool = False) -> None:
    """What a push does: the served repo's branches and tags become the source's (forced)."""
    args = ["git", "-C", str(bare), "fetch", "-q", "--force"] + (["--prune"] if prune else [])
    subprocess.run(args + [str(source.path), "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], check=True)


@pytest.fixture(params=TRANSPORTS)
def transport(request, tmp_path, bare, monkeypatch):
    """A real server for the served repo, and a factory of Git storages pointed at it."""
    yield from _serve(request.param, tmp_path, bare, monkeypatch)


@pytest.fixture(params=["http", "http-nofilter"])
def http(request, tmp_path, bare, monkeypatch):
    """The same, smart HTTP only (token auth), with and without filter support."""
    yield from _serve(request.param, tmp_path, bare, monkeypatch)


def _serve(kind, tmp_path, bare, monkeypatch):
    stop = None
    server = None
    if kind.startswith("http"):
        if kind == "http-nofilter":
            configure(str(bare), allow_filter=False, allow_any_sha1=False)
        server = start_http(bare.parent, username="ci-bot", password=TOKEN)
        monkeypatch.setenv("GIT_TOKEN", TOKEN)
        # a token goes with repo + repo_host (a clone URL secret overrides the token arguments, as in Prefect 1)
        secret = {"repo": "flows", "repo_host": server.url, "git_clone_url_secret_name": None,
                  "git_token_secret_name": "GIT_TOKEN", "git_token_username": "ci-bot"}
        stop = server.stop
    elif kind == "daemon":
        daemon = GitDaemon(bare.parent)
        monkeypatch.setenv("CLONE_URL", f"{daemon.url}/flows.git")
        secret = {}
        stop = daemon.stop
    else:
        ssh_dir = tmp_path / "ssh"
        ssh_dir.mkdir()
        sshd = SSHServer(ssh_dir)
        monkeypatch.setenv("GIT_SSH_COMMAND", sshd.ssh_command)
        monkeypatch.setenv("CLONE_URL", sshd.url(bare))
        secret = {}
        stop = sshd.stop

    def make(**kw) -> Git:
        args = {"flow_path": "flows/etl.py", "repo": "acme/flows", "git_clone_url_secret_name": "CLONE_URL", **secret}
        args.update(kw)
        return Git(**args)

    yield SimpleNamespace(kind=kind, make=make, server=server)
    stop()
