"""The whole path on real git: check in pre-commit, register in pre-push (pending), confirm, run, agents.

Runs against SQLite and PostgreSQL. The remote is a bare repository reached over file://, the flow's
storage is `Git`, and everything happens through the real `git` and `gitflows` commands.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitflows.agent import Agent
from gitflows.registry import open_registry

from ..conftest import git, run_cli

FLOW = '''
import json
import os
import time

from gitflows import Flow, Parameter, task
from gitflows.storage import Git
from lib.helpers import scale


@task
def work(n, marker):
    time.sleep(float(os.environ.get("WORK_SLEEP", "0")))
    rows = scale(list(range(n)), 10)
    if marker:
        with open(marker, "a") as fh:
            fh.write(json.dumps(rows) + "\\n")
    return rows


with Flow("etl", storage=Git(flow_path="flows/etl.py", repo="flows", repo_host="file://{remote}")) as flow:
    work(Parameter("n", default=3), Parameter("marker", default=""))
'''
HELPER = "def scale(rows, factor):\n    return [r * factor for r in rows]\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    remote = tmp_path / "remote"
    remote.mkdir()
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote / "flows.git")], check=True)
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    git("remote", "add", "origin", str(remote / "flows.git"), cwd=work)
    (work / "flows" / "lib").mkdir(parents=True)
    (work / "flows" / "etl.py").write_text(FLOW.replace("{remote}", str(remote)))
    (work / "flows" / "lib" / "helpers.py").write_text(HELPER)
    (work / "README.md").write_text("# flows\n")
    env_path = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    monkeypatch.setenv("PATH", env_path)
    return work


def cli(*args, cwd, input=None):
    result = run_cli(*args, cwd=cwd, input=input)
    return result


def commit_all(work, message):
    git("add", "-A", cwd=work)
    return subprocess.run(["git", "commit", "-q", "-m", message], cwd=work, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})


def push(work):
    return subprocess.run(["git", "push", "-q", "origin", "main"], cwd=work, capture_output=True, text=True)


def read_marker(path: Path) -> list[list[int]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_commit_push_register_confirm_and_run(project, registry_url, tmp_path):
    assert cli("hooks", "install", cwd=project).returncode == 0
    committed = commit_all(project, "add etl flow")
    assert committed.returncode == 0, committed.stderr
    pushed = push(project)
    assert pushed.returncode == 0, pushed.stderr
    assert "etl: registered: version 1" in pushed.stdout + pushed.stderr
    reg = open_registry(registry_url)
    v1 = reg.latest("etl")
    head = git("rev-parse", "HEAD", cwd=project).strip()
    assert (v1.version, v1.sha, v1.state) == (1, head, "pending")  # registered before the objects were sent
    assert [p for p, _ in v1.closure] == ["flows/etl.py", "flows/lib/helpers.py"]
    confirmed = cli("register", "--confirm-pending", cwd=project)
    assert "etl: version 1 confirmed" in confirmed.stdout
    assert reg.latest("etl").state == "confirmed"

    marker1 = tmp_path / "m1"
    scheduled = cli("run", "etl", "--param", "n=4", "--param", f"marker={marker1}", cwd=project)
    assert scheduled.returncode == 0 and "scheduled" in scheduled.stdout
    agent = cli("agent", "--once", cwd=project)
    assert agent.returncode == 0, agent.stdout + agent.stderr
    assert read_marker(marker1) == [[0, 10, 20, 30]]
    runs = cli("runs", "--json", cwd=project)
    assert json.loads(runs.stdout)[0]["state"] == "success"

    # a change to the imported helper only: the flow gets a new version
    (project / "flows" / "lib" / "helpers.py").write_text(HELPER.replace("r * factor", "r * factor * 10"))
    commit_all(project, "scale more")
    out = push(project)
    assert "etl: registered: version 2" in out.stdout + out.stderr
    # an unrelated change: no new version
    (project / "README.md").write_text("# flows, documented\n")
    commit_all(project, "docs")
    out = push(project)
    assert "no flow changed" in out.stdout + out.stderr
    cli("register", "--confirm-pending", cwd=project)
    assert [v.version for v in reg.versions("etl")] == [1, 2]

    # version 1 still runs its own pinned code after the branch moved on
    marker2, marker3 = tmp_path / "m2", tmp_path / "m3"
    cli("run", "etl", "--flow-version", "1", "--param", "n=2", "--param", f"marker={marker2}", cwd=project)
    cli("run", "etl", "--param", "n=2", "--param", f"marker={marker3}", cwd=project)
    assert cli("agent", "--once", cwd=project).returncode == 0
    assert read_marker(marker2) == [[0, 10]]
    assert read_marker(marker3) == [[0, 100]]
    listed = cli("flows", cwd=project)
    assert "etl\tv2\t" in listed.stdout and "confirmed" in listed.stdout


def test_pre_commit_hook_blocks_a_broken_flow(project, registry_url):
    assert cli("hooks", "install", cwd=project).returncode == 0
    (project / "flows" / "bad.py").write_text(
        "from gitflows import Flow\nfrom gitflows.storage import Git\n"
        "flow = Flow('bad', storage=Git(flow_path='flows/other.py', repo='flows'))\n")
    result = commit_all(project, "add a broken flow")
    assert result.returncode != 0
    assert "flows/bad.py:3: flow 'bad': storage flow_path='flows/other.py' does not match" in result.stdout + result.stderr


def test_a_commit_that_never_reaches_the_remote_is_never_run(project, registry_url, tmp_path):
    commit_all(project, "local only")
    registered = cli("register", "flows/etl.py", cwd=project)
    assert "etl: registered: version 1" in registered.stdout
    marker = tmp_path / "never"
    cli("run", "etl", "--param", f"marker={marker}", cwd=project)
    reg = open_registry(registry_url)
    agent = Agent(registry_url, confirm_grace=0.5, poll=0.05)
    deadline = time.monotonic() + 20
    while reg.runs("etl")[0].state == "scheduled" and time.monotonic() < deadline:
        agent.run(once=True)
        time.sleep(0.1)
    run = reg.runs("etl")[0]
    assert run.state == "failed"
    assert "never reached the remote" in run.error
    assert not marker.exists()
    assert reg.latest("etl").state == "pending"


def test_many_agents_one_killed_mid_run(project, registry_url, tmp_path):
    commit_all(project, "add etl flow")
    assert push(project).returncode == 0
    assert "registered" in cli("register", "flows/etl.py", "--pushed", cwd=project).stdout
    markers = [tmp_path / f"marker-{i}" for i in range(12)]
    for i, marker in enumerate(markers):
        assert cli("run", "etl", "--param", f"n={i % 3 + 1}", "--param", f"marker={marker}", cwd=project).returncode == 0
    env = {**os.environ, "WORK_SLEEP": "0.4", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    agents = [subprocess.Popen([sys.executable, "-m", "gitflows", "agent", "--concurrency", "2", "--lease", "1.5",
                                "--poll", "0.1"], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True) for _ in range(3)]
    reg = open_registry(registry_url)
    victim = agents[0]
    deadline = time.monotonic() + 60
    victim_name = None
    while time.monotonic() < deadline and victim_name is None:
        for r in reg.runs("etl"):
            if r.state == "running" and r.agent and r.agent.endswith(f":{victim.pid}"):
                victim_name = r.agent
        time.sleep(0.05)
    assert victim_name, "the first agent never started a run"
    held = {r.id for r in reg.runs("etl") if r.agent == victim_name and r.state in ("claimed", "running")}
    os.kill(victim.pid, signal.SIGKILL)
    while time.monotonic() < deadline:
        states = [r.state for r in reg.runs("etl")]
        if all(s in ("success", "failed", "lost") for s in states):
            break
        time.sleep(0.2)
    for a in agents[1:]:
        a.send_signal(signal.SIGTERM)
    for a in agents:
        a.wait(30)
    runs = reg.runs("etl")
    assert len(runs) == 12
    assert {r.state for r in runs} == {"success"}, [(r.id, r.state, r.error) for r in runs]
    retried = {r.id for r in runs if r.attempts > 1}
    assert retried and retried <= held  # only the killed agent's runs were run again
    for r, marker in zip(sorted(runs, key=lambda r: r.id), markers, strict=True):
        completions = read_marker(marker)
        assert 1 <= len(completions) <= (2 if r.id in held else 1)
