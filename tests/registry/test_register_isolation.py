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


def test_progress_on_a_terminal_and_quiet_otherwise(repo):
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    commit(repo, {f"flows/f{i}.py": flow_script(f"f{i}", f"flows/f{i}.py") for i in range(3)})
    piped = run_cli("register", "--pushed", cwd=repo)
    assert piped.returncode == 0 and "[1/3]" not in piped.stderr  # not a terminal: no progress noise
    commit(repo, {f"flows/f{i}.py": flow_script(f"f{i}", f"flows/f{i}.py", prelude="X = 2") for i in range(3)})
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-m", "gitflows", "register", "--pushed"], cwd=repo, env=env,
                          stdout=subprocess.PIPE, stderr=follower, timeout=120)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"[1/3] flows/f0.py" in seen and b"[3/3] flows/f2.py" in seen
    assert b"registered: version 2" in proc.stdout


def test_a_pushed_flow_records_its_schedule(repo):
    scheduled = flow_script("etl", "flows/etl.py").replace(
        'with Flow("etl", storage=', 'from datetime import timedelta\nfrom gitflows.schedules import IntervalSchedule\n\n'
        'with Flow("etl", schedule=IntervalSchedule(timedelta(minutes=5)), storage=')
    commit(repo, {"flows/etl.py": scheduled})
    result = run_cli("register", "--pushed", cwd=repo)
    assert "flows/etl.py: etl: registered: version 1" in result.stdout, result.stdout + result.stderr
    version = open_registry(open_url()).get_version("etl")
    assert version.schedule["clocks"][0] == {"type": "IntervalClock", "interval": 300.0, "start_date": None,
                                             "end_date": None, "parameter_defaults": {}}
