"""`gitflows run TARGET`: a registered flow NAME wins over a same-named local file; a path runs the file."""

from __future__ import annotations

import textwrap

import pytest

from gitflows.registry import FlowVersion, open_registry
from tests.conftest import run_cli

MARKER_SCRIPT = """\
import pathlib
pathlib.Path("file-was-executed").write_text("yes")
from gitflows import Flow, task

@task
def one():
    return 1

with Flow("local") as flow:
    one()
"""


@pytest.fixture
def registry_env(tmp_path):
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    registry = open_registry(url)
    registry.register(FlowVersion(name="etl", version=0, storage={"type": "Local"}, repo=None, path="flows/etl.py",
                                  requested_ref=None, sha="a" * 40, closure=[], fingerprint="f1", labels=[],
                                  state="confirmed", registered_at=0.0))
    registry.register(FlowVersion(name="report", version=0, storage={"type": "Local"}, repo=None, path="r.py",
                                  requested_ref=None, sha="b" * 40, closure=[], fingerprint="f2", labels=[],
                                  state="confirmed", registered_at=0.0))
    return registry, {"GITFLOWS_REGISTRY": url}


def test_registered_name_wins_over_a_local_file_of_that_name(tmp_path, registry_env):
    registry, env = registry_env
    (tmp_path / "etl").write_text(MARKER_SCRIPT)
    result = run_cli("run", "etl", "--param", "n=5", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "file-was-executed").exists()
    assert "etl: the registered flow (a file of that name exists here; to run the file, say ./etl)" in result.stderr
    assert "scheduled" in result.stdout
    runs = registry.runs("etl")
    assert [(r.flow_name, r.parameters) for r in runs] == [("etl", {"n": 5})]


@pytest.mark.parametrize("target", ["./etl", "etl.py"])
def test_a_path_runs_the_file(tmp_path, registry_env, target):
    registry, env = registry_env
    (tmp_path / target.removeprefix("./")).write_text(MARKER_SCRIPT)
    result = run_cli("run", target, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "file-was-executed").exists()
    assert "running flow 'local' from" in result.stderr
    assert registry.runs() == []


def test_unknown_name_is_one_line_listing_registered_flows(tmp_path, registry_env):
    _, env = registry_env
    result = run_cli("run", "nope", cwd=tmp_path, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "'nope'" in lines[0] and "registered flows: etl, report" in lines[0]
    assert "./nope" in lines[0]  # says how to run a file instead


def test_missing_path_is_one_line(tmp_path, registry_env):
    _, env = registry_env
    result = run_cli("run", "./nope", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "nope does not exist" in result.stderr


def test_help_explains_the_rule():
    text = " ".join(run_cli("run", "--help").stdout.split())
    assert "registered flow" in text and "./etl" in text and textwrap.dedent("ends in .py") in text
