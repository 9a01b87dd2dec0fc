from __future__ import annotations

import json

from gitflows.cli import parse_params

from .conftest import git, run_cli

ETL = """
from gitflows import Flow, Parameter, task
from gitflows.storage.local import Local

@task
def extract(n):
    return list(range(n))

@task
def load(rows):
    return len(rows)

with Flow("etl", storage=Local(path="flows/etl.py", stored_as_script=True)) as flow:
    load(extract(Parameter("n", default=3)))
"""


def test_parse_params_reads_json_else_string():
    assert parse_params(("n=5", "s=hello", "l=[1,2]", "t=true", "e=", "q=a=b")) == {
        "n": 5, "s": "hello", "l": [1, 2], "t": True, "e": "", "q": "a=b"}


def test_run_prints_each_task_and_exits_zero(write, tmp_path):
    write("flows/etl.py", ETL)
    result = run_cli("run", "flows/etl.py", "--param", "n=5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Success  load  5" in result.stdout
    assert "flow 'etl': Success" in result.stdout


def test_failed_flow_exits_one(write, tmp_path):
    write("f.py", """
        from gitflows import Flow, task
        @task
        def boom():
            raise ValueError("broken input")
        with Flow("bad") as flow:
            boom()
    """)
    result = run_cli("run", "f.py", cwd=tmp_path)
    assert result.returncode == 1
    assert "Failed   boom  ValueError: broken input" in result.stdout


def test_user_errors_are_one_line_with_exit_two(write, tmp_path):
    write("two.py", "from gitflows import Flow\na = Flow('a')\nb = Flow('b')\n")
    result = run_cli("run", "two.py", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: Multiple flows found in two.py ('a', 'b'); name the one you want (flow_name=... / --flow NAME)"]
    missing = run_cli("run", "nope.py", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip() == "error: flow script nope.py does not exist"
    bad_param = run_cli("run", "two.py", "--flow", "a", "--param", "novalue", cwd=tmp_path)
    assert bad_param.returncode == 2 and "expected KEY=VALUE" in bad_param.stderr
    unknown = run_cli("run", "two.py", "--flow", "a", "--param", "x=1", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown parameter(s) x" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    debug = run_cli("--debug", "run", "two.py", cwd=tmp_path)
    assert "Traceback" in debug.stderr and debug.returncode == 2


def test_flows_lists_flows_executed_or_static(write, tmp_path):
    write("flows/etl.py", ETL)
    out = run_cli("flows", "flows/etl.py", "--json", cwd=tmp_path)
    data = json.loads(out.stdout)
    assert data["mode"] == "executed"
    assert data["flows"][0]["name"] == "etl"
    assert data["flows"][0]["storage"]["type"] == "Local"
    write("flows/needs_pandas.py", "import pandas_not_here_zz\nfrom gitflows import Flow\nf = Flow('p')\n")
    out = run_cli("flows", "flows/needs_pandas.py", cwd=tmp_path)
    assert out.returncode == 0
    assert "showing what the syntax tree says" in out.stderr
    assert out.stdout.strip() == "p\tno storage"


def test_version_and_help():
    from gitflows import __version__

    assert run_cli("--version").stdout.strip() == f"gitflows, version {__version__}"
    helptext = run_cli("--help").stdout
    for command in ("check", "run", "flows", "cache"):
        assert command in helptext
    assert "Exit codes" in helptext
    assert "KEY=VALUE" in run_cli("run", "--help").stdout


def test_cache_info_and_prune(tmp_path, isolated):
    from gitflows.cache import Cache

    Cache().materialise(("h", "r", "s"), {"a.py": b"x"})
    info = run_cli("cache", "info", "--json")
    assert json.loads(info.stdout)["trees"]["count"] == 1
    pruned = run_cli("cache", "prune", "--all")
    assert pruned.returncode == 0 and pruned.stdout.startswith("removed 1 tree(s)")


def test_check_reports_one_line_per_problem(write, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    git("remote", "add", "origin", "https://user:hunter2-token@github.com/acme/flows.git", cwd=repo)
    write("flows/good.py", """
        from gitflows import Flow
        from gitflows.storage import GitHub
        with Flow("good", storage=GitHub(repo="acme/flows", path="flows/good.py")) as flow:
            pass
    """, root=repo)
    write("flows/wrong.py", """
        from gitflows import Flow
        from gitflows.storage import GitHub
        from . import missing_sibling
        flow = Flow("good", storage=GitHub(repo="other/repo", path="flows/old_name.py"))
    """, root=repo)
    write("flows/nostorage.py", "from gitflows import Flow\nf = Flow('bare')\n", root=repo)
    write("flows/syntax.py", "with Flow('x') as f\n", root=repo)
    write("flows/empty.py", "x = 1\n", root=repo)
    write("flows/bb.py", """
        from gitflows import Flow
        from gitflows.storage import Bitbucket
        flow = Flow("bb", storage=Bitbucket(project="ACME", repo="flows", path="flows/bb.py"))
    """, root=repo)
    ok = run_cli("check", "flows/good.py", cwd=repo)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 flow(s): ok" in ok.stderr
    result = run_cli("check", "flows/good.py", "flows/wrong.py", "flows/nostorage.py", "flows/syntax.py",
                     "flows/empty.py", "flows/bb.py", cwd=repo)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert "flows/wrong.py:5: flow name 'good' is also used at flows/good.py:4; flow names must be unique" in lines
    assert ("flows/wrong.py:5: flow 'good': storage path='flows/old_name.py' does not match the file's path "
            "in the repo 'flows/wrong.py'") in lines
    assert ("flows/wrong.py:5: flow 'good': storage repo='other/repo' does not match remote 'origin' "
            "(https://github.com/acme/flows.git)") in lines
    assert "flows/wrong.py:4: imports .missing_sibling but no such file next to the script" in lines
    assert any(line.startswith("flows/nostorage.py:2: flow 'bare' has no storage") for line in lines)
    assert any(line.startswith("flows/syntax.py:1: syntax error") for line in lines)
    assert not any(line.startswith("flows/empty.py") for line in lines)  # helper modules are fine
    assert ("flows/bb.py:4: flow 'bb': Bitbucket storage has neither host= (Bitbucket Server) nor workspace= "
            "(Bitbucket Cloud); it cannot load the flow") in lines
    assert "hunter2" not in result.stdout + result.stderr
    assert len(lines) == 7


def test_check_finds_a_flow_name_used_elsewhere_in_the_repo(write, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    write("flows/old.py", "from gitflows import Flow\nfrom gitflows.storage import Local\n\n\n"
                          "flow = Flow(\"etl\", storage=Local())\n", root=repo)
    write("flows/new.py", "from gitflows import Flow\nfrom gitflows.storage import Local\n"
                          "flow = Flow('etl', storage=Local())\n", root=repo)
    git("add", "-A", cwd=repo)
    result = run_cli("check", "flows/new.py", cwd=repo)  # only the changed file is given, as in a hook
    assert result.returncode == 1
    assert "flows/new.py:3: flow name 'etl' is also used at flows/old.py:5" in result.stdout
