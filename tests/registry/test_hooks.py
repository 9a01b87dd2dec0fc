"""The installed git hooks as a newcomer meets them: they run with the Python that installed them (a
shell without the venv commits fine), say so when that Python is gone, check what is staged (paths with
spaces included), and a registry outage stops a push with the way around it. Real git commit/push."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import git, run_cli

GOOD = '''from gitflows import Flow, task
from gitflows.storage import Git


@task
def hello():
    return 1


with Flow("{name}", storage=Git(flow_path="{path}", repo="{repo}")) as flow:
    hello()
'''


@pytest.fixture
def repo(tmp_path, monkeypatch):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    git("remote", "add", "origin", str(remote), cwd=work)
    monkeypatch.setenv("GITFLOWS_REGISTRY", str(tmp_path / "registry.db"))
    installed = run_cli("hooks", "install", cwd=work)
    assert installed.returncode == 0, installed.stderr
    return work


def bare_env(**extra: str) -> dict[str, str]:
    """A shell where the gitflows environment is not activated: no venv on PATH, no PYTHONPATH."""
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for key in ("GITFLOWS_REGISTRY", "GITFLOWS_CACHE_DIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra)
    return env


def commit(work, message="c", **env):
    return subprocess.run(["git", "commit", "-q", "-m", message], cwd=work, capture_output=True, text=True,
                          env=bare_env(**env))


def script(name, path, repo="flows"):
    return GOOD.format(name=name, path=path, repo=repo)


def test_hooks_run_with_the_python_that_installed_them(repo):
    hook = (repo / ".git" / "hooks" / "pre-commit").read_text()
    assert f'PYTHON="{sys.executable}"' in hook
    (repo / "flows").mkdir()
    (repo / "flows" / "etl.py").write_text(script("etl", "flows/other.py"))  # a path that is not the file's
    git("add", "-A", cwd=repo)
    refused = commit(repo)
    assert refused.returncode != 0
    assert "flow_path='flows/other.py' does not match" in refused.stdout + refused.stderr
    (repo / "flows" / "etl.py").write_text(script("etl", "flows/etl.py"))
    git("add", "-A", cwd=repo)
    done = commit(repo)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_hook_whose_python_is_gone_says_how_to_fix_it(repo):
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(hook.read_text().replace(sys.executable, "/nonexistent/venv/bin/python"))
    (repo / "x.py").write_text("X = 1\n")
    git("add", "-A", cwd=repo)
    result = commit(repo)
    assert result.returncode != 0
    assert "/nonexistent/venv/bin/python (the Python that installed this hook) is gone" in result.stderr
    assert "gitflows hooks install --force" in result.stderr and "--no-verify" in result.stderr


def test_the_pre_commit_hook_checks_what_is_staged_not_the_working_tree(repo):
    folder = repo / "my flows"
    folder.mkdir()
    target = folder / "daily etl.py"
    target.write_text(script("etl", "my flows/daily etl.py"))
    git("add", "-A", cwd=repo)
    target.write_text("this is not python (\n")  # broken in the working tree, not staged
    assert commit(repo, "good staged").returncode == 0
    target.write_text(script("etl", "my flows/wrong.py"))
    git("add", "-A", cwd=repo)  # a bad version staged...
    target.write_text(script("etl", "my flows/daily etl.py"))  # ...and a good one only in the working tree
    refused = commit(repo, "bad staged")
    assert refused.returncode != 0
    shown = refused.stdout + refused.stderr  # git shows a hook's output on stderr
    assert "my flows/daily etl.py" in shown and "does not match" in shown


def test_a_registry_outage_stops_the_push_with_the_way_around_it(repo):
    (repo / "flows").mkdir()
    (repo / "flows" / "etl.py").write_text(script("etl", "flows/etl.py"))
    git("add", "-A", cwd=repo)
    assert commit(repo).returncode == 0
    down = "postgresql://postgres@127.0.0.1:1/nothing"  # nothing listens on port 1
    pushed = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=repo, capture_output=True, text=True,
                            env=bare_env(GITFLOWS_REGISTRY=down))
    assert pushed.returncode != 0
    assert "cannot connect" in pushed.stderr
    assert "git push --no-verify" in pushed.stderr and "gitflows register --from" in pushed.stderr
    assert "postgres@" not in pushed.stderr  # the registry is described without its user
