"""Prefect 1's ``flow.register()``: registers in the gitflows registry; skipped while a script loads."""

from __future__ import annotations

import socket
import textwrap

import pytest

from gitflows import Flow, task
from gitflows.agent import Agent
from gitflows.registry import open_registry
from gitflows.script import extract_flow_from_file
from gitflows.storage import Local


@task
def double(x):
    return 2 * x


def test_register_builds_the_storage_and_an_agent_runs_it(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    monkeypatch.setenv("GITFLOWS_REGISTRY", url)
    with Flow("doubler", storage=Local(directory=str(tmp_path / "flows"))) as flow:
        double(21)
    assert flow.register(project_name="ignored", labels=["team-a"]) == "doubler:v1"
    version = open_registry(url).get_version("doubler")
    assert version.state == "confirmed"
    assert set(version.labels) == {"team-a", socket.gethostname()}
    assert version.storage["type"] == "Local" and version.storage["flows"]["doubler"].startswith(str(tmp_path))

    reg = open_registry(url)
    run = reg.create_run("doubler")
    Agent(url, labels=["team-a", socket.gethostname()], poll=0.05).run(once=True)
    done = reg.get_run(run.id)
    assert done.state == "success", done.error
    assert "Success  double" in done.logs


def test_register_without_storage_uses_local_as_prefect(tmp_path, monkeypatch):
    monkeypatch.setenv("GITFLOWS_REGISTRY", f"sqlite:///{tmp_path / 'reg.db'}")
    flow = Flow("plain")
    assert flow.register() == "plain:v1"
    assert isinstance(flow.storage, Local)


def test_register_while_the_script_loads_warns_and_does_nothing(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    monkeypatch.setenv("GITFLOWS_REGISTRY", url)
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent("""
        from gitflows import Flow
        with Flow("etl") as flow:
            pass
        flow.register(project_name="prod")
    """))
    with pytest.warns(UserWarning, match="flow.register\\(\\) was called while its script was being loaded"):
        flow = extract_flow_from_file(file_path=str(path))
    assert flow.name == "etl"
    assert open_registry(url).flows() == []
