"""docs/migrating.md runs as written: the Prefect 1 file differs from the gitflows one only in its
imports; the gitflows file is registered pinned to a commit and run by an agent, with its secret
resolved and masked."""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "migrating.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)


def blocks():
    for lang, info, body in BLOCK.findall(DOC.read_text()):
        title = re.search(r'title="([^"]+)"', info)
        yield lang, title.group(1) if title else None, body


def test_the_prefect1_file_changes_only_in_its_imports():
    files = {title: body for lang, title, body in blocks() if lang == "python"}
    before, after = files["prefect1: flows/etl.py"], files["flows/etl.py"]
    changed = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert changed, "the example must show the import change"
    for line in changed:
        assert re.match(r"^[+-] from (prefect|gitflows)(\.storage)? import ", line), line
    assert after.replace("gitflows", "prefect") == before


def test_the_migration_runs_as_documented(tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"],
               GITFLOWS_REGISTRY=f"sqlite:///{tmp_path / 'registry.db'}",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    script = ["set -euo pipefail"]
    for lang, title, body in blocks():
        if lang == "python" and title and not title.startswith("prefect1:"):
            path = work / title
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
        elif lang == "sh":
            script.append(body)
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=work, env=env, text=True, capture_output=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "pw-7c1e9d-do-not-print" not in out
    assert "connecting to the warehouse with password ***" in out
    assert "loaded 4 rows" in out
    assert re.search(r"\bsuccess\b", out), out

    from gitflows.registry import open_registry

    reg = open_registry(env["GITFLOWS_REGISTRY"])
    (run,) = reg.runs("etl")
    assert run.state == "success"
    assert "password ***" in run.logs and "pw-7c1e9d-do-not-print" not in run.logs
    version = reg.get_version("etl")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, text=True, capture_output=True).stdout.strip()
    assert version.sha == head
    assert version.storage["secrets"] == ["WAREHOUSE_PASSWORD"]
    assert "pw-7c1e9d" not in str(version.storage) and "file://" not in str(version.storage)
