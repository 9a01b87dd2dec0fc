"""`gitflows register` (the pre-push hook) executes only flow scripts, and one script cannot end it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitflows.registry import open_registry
from tests.conftest import git, run_cli

FLOW = '''from gitflows import Flow, task
from gitflows.storage import Git


@task
def {task}():
    return 1


{prelude}
with Flow("{name}", storage=Git(flow_path="{path}", repo="acme/flows")) as flow:
    {task}()
'''


def flow_script(name: str, path: str, prelude: str = "") -> str:
    return FLOW.format(name=name, path=path, task=name.replace("-", "_"), prelude=prelude)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    path = tmp_path / "repo"
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("GITFLOWS_REGISTRY", url)
    return path


def commit(repo: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "c", cwd=repo)


def registered(url_env: str) -> list[str]:
    return sorted(v.name for v in open_registry(url_env).flows())


def test_register_never_executes_a_file_that_merely_mentions_flow(repo, tmp_path):
    marker = tmp_path / "marker"
    commit(repo, {
        "flows/etl.py": flow_script("etl", "flows/etl.py"),
        "flows/notes.py": f'''"""Helpers. Not a flow, though this docstring says Flow( and so does a comment."""
import pathlib

# with Flow("not-a-flow") as flow: ...
pathlib.Path({str(marker)!r}).write_text("executed")
''',
    })
    result = run_cli("register", "--pushed", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert not marker.exists(), "gitflows register executed flows/notes.py"
    assert "notes.py" not in result.stdout + result.stderr
    assert "flows/etl.py: etl: registered: version 1" in result.stdout


@pytest.mark.parametrize("ending", ["import os\nos._exit(0)", "import sys\nsys.exit(0)", "import os\nos._exit(3)"])
def test_a_script_that_exits_at_import_cannot_end_registration(repo, ending):
    commit(repo, {
        "flows/a_quits.py": flow_script("quits", "flows/a_quits.py", prelude=ending),
        "flows/b_etl.py": flow_script("etl", "flows/b_etl.py"),
    })
    result = run_cli("register", "--pushed", cwd=repo)
    assert "flows/b_etl.py: etl: registered: version 1" in result.stdout, result.stdout + result.stderr
    line = next((x for x in result.stdout.splitlines() if x.startswith("flows/a_quits.py")), "")
    assert "not registered" in line and "exit" in line, result.stdout + result.stderr
    assert registered(open_url()) == ["etl"]


def open_url() -> str:
    import os

    return os.environ["GITFLOWS_REGISTRY"]


def test_a_script_that_hangs_at_import_is_stopped_and_the_others_are_registered(repo, tmp_path):
    helper_pid = tmp_path / "helper.pid"
    commit(repo, {
        "flows/a_hangs.py": flow_script("hangs", "flows/a_hangs.py", prelude=(
            "import subprocess, time\n"
            f"open({str(helper_pid)!r}, 'w').write(str(subprocess.Popen(['sleep', '300']).pid))\n"
            "time.sleep(300)\n")),
        "flows/b_etl.py": flow_script("etl", "flows/b_etl.py"),
    })
    import time

    began = time.monotonic()
    result = run_cli("register", "--pushed", cwd=repo, env={"GITFLOWS_SCRIPT_TIMEOUT": "2"})
    assert time.monotonic() - began < 30
    assert "flows/b_etl.py: etl: registered: version 1" in result.stdout, result.stdout + result.stderr
    line = next((x for x in result.stdout.splitlines() if x.startswith("flows/a_hangs.py")), "")
    assert "not registered" in line and "took longer than 2s" in line and "GITFLOWS_SCRIPT_TIMEOUT" in line, \
        result.stdout + result.stderr
    assert registered(open_url()) == ["etl"]
    pid = int(helper_pid.read_text())
    import os

    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] == "Z", \
        "the hanging script's own subprocess outlived it"


def test_a_bad_script_timeout_is_one_line(repo):
    commit(repo, {"flows/b_etl.py": flow_script("etl", "flows/b_etl.py")})
    result = run_cli("register", "--pushed", cwd=repo, env={"GITFLOWS_SCRIPT_TIMEOUT": "soon"})
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: GITFLOWS_SCRIPT_TIMEOUT='soon': expected a positive number of seconds, "
                                     "e.g. 120")
