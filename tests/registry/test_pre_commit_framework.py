"""The hooks through the real `pre-commit` tool, installed from this repository's .pre-commit-hooks.yaml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitflows.registry import open_registry

from ..conftest import REPO_ROOT, git
from .test_pipeline import FLOW, HELPER, commit_all


def _gitflows_repo(tmp_path: Path) -> tuple[str, str]:
    """This checkout as a repository pre-commit can clone: the working tree, committed."""
    copy = tmp_path / "gitflows-src"
    ignore = shutil.ignore_patterns(".venv", ".tools", "__pycache__", "*.egg-info", ".pytest_cache", ".git")
    shutil.copytree(REPO_ROOT, copy, ignore=ignore, symlinks=True)
    git("init", "-q", "-b", "main", cwd=copy)
    git("add", "-A", cwd=copy)
    git("commit", "-q", "-m", "snapshot", cwd=copy)
    return str(copy), git("rev-parse", "HEAD", cwd=copy).strip()


def test_pre_commit_runs_check_and_register(tmp_path, registry_url, monkeypatch):
    pre_commit = shutil.which("pre-commit", path=os.path.dirname(sys.executable))
    if pre_commit is None:
        pytest.skip("pre-commit is not installed (it is in the test extra)")
    source, rev = _gitflows_repo(tmp_path)
    remote = tmp_path / "remote"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote / "flows.git")], check=True)
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    git("remote", "add", "origin", str(remote / "flows.git"), cwd=work)
    (work / "flows" / "lib").mkdir(parents=True)
    (work / "flows" / "etl.py").write_text(FLOW.replace("{remote}", str(remote)))
    (work / "flows" / "lib" / "helpers.py").write_text(HELPER)
    (work / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {source}\n  rev: {rev}\n  hooks:\n  - id: gitflows-check\n  - id: gitflows-register\n"
        "    additional_dependencies: ['psycopg[binary]', dulwich]\n")  # a shared registry, and Git storage
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path / "pre-commit-home"))
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    installed = subprocess.run([pre_commit, "install", "--hook-type", "pre-commit", "--hook-type", "pre-push"],
                               cwd=work, env=env, capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    committed = commit_all(work, "add etl flow")
    assert committed.returncode == 0, committed.stdout + committed.stderr
    assert "gitflows check" in committed.stdout + committed.stderr
    pushed = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=work, env=env, capture_output=True, text=True,
                            timeout=600)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    version = open_registry(registry_url).latest("etl")
    assert version is not None and version.sha == git("rev-parse", "HEAD", cwd=work).strip()
    assert version.state == "pending"
    # a broken flow is stopped at commit time
    (work / "flows" / "bad.py").write_text("from gitflows import Flow\n\nwith Flow('x') as f\n")
    broken = commit_all(work, "broken")
    assert broken.returncode != 0
    assert "flows/bad.py:3: syntax error" in broken.stdout + broken.stderr
