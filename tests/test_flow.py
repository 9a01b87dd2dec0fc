from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys

import pytest

from gitflows import Flow, Parameter, task
from gitflows.errors import FlowNotFoundError, FlowRunError
from gitflows.flow import select_flow


@task
def extract(n):
    return list(range(n))


@task
def double(rows):
    return [r * 2 for r in rows]


@task
def total(rows):
    return sum(rows)


def make_flow():
    with Flow("etl") as flow:
        n = Parameter("n", default=3)
        total(double(extract(n)))
    return flow


def test_run_in_dependency_order_with_results_by_name():
    state = make_flow().run()
    assert state.is_successful()
    assert state.result["extract"].result == [0, 1, 2]
    assert state.result["double"].result == [0, 2, 4]
    assert state["total"].result == 6
    assert state.results["n"] == 3


def test_parameters_override_defaults_and_unknown_or_missing_are_errors():
    flow = make_flow()
    assert flow.run(parameters={"n": 5})["total"].result == 20
    with pytest.raises(FlowRunError, match=r"unknown parameter\(s\) m; it takes: n"):
        flow.run(parameters={"m": 1})
    with Flow("needs") as needs:
        x = Parameter("x")  # no default: required
        total(x)
    with pytest.raises(FlowRunError, match=r"required parameter\(s\) not given: x"):
        needs.run()
    assert needs.run(parameters={"x": [1, 2]})["total"].result == 3


def test_failure_fails_the_run_and_skips_downstream():
    @task
    def boom(rows):
        raise ValueError("bad row 7")

    with Flow("f") as flow:
        rows = extract(3)
        total(boom(rows))
        side = double(rows)
    state = flow.run()
    assert state.is_failed()
    assert state["boom"].is_failed()
    assert "ValueError: bad row 7" in state["boom"].message
    assert state["total"].is_skipped()
    assert "boom" in state["total"].message
    assert state["double"].is_successful()  # not downstream of the failure
    assert side.name == "double"


def test_retries_are_honoured_with_delay():
    calls = []

    @task(max_retries=2, retry_delay=datetime.timedelta(seconds=0.05))
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return "ok"

    with Flow("r") as flow:
        flaky()
    state = flow.run()
    assert state.is_successful()
    assert state["flaky"].result == "ok"
    assert state["flaky"].attempts == 3

    calls.clear()

    @task(max_retries=1, retry_delay=0)
    def always():
        calls.append(1)
        raise RuntimeError("never")

    with Flow("r2") as flow2:
        always()
    state = flow2.run()
    assert state.is_failed() and len(calls) == 2


def test_same_task_twice_gets_distinct_names_and_keywords_work():
    with Flow("twice") as flow:
        a = extract(2)
        b = extract(n=4)
        total(rows=[a, b])  # tasks inside a list are resolved too
    state = flow.run()
    assert state["extract"].result == [0, 1]
    assert state["extract-2"].result == [0, 1, 2, 3]
    # list of two lists: sum() fails -> the flow reports it
    assert state["total"].is_failed()
    assert flow.structure()["edges"] == [
        {"upstream": "extract", "downstream": "total", "key": "rows"},
        {"upstream": "extract-2", "downstream": "total", "key": "rows"},
    ]


def test_upstream_tasks_order_without_data():
    order = []

    @task
    def first():
        order.append("first")

    @task
    def second():
        order.append("second")

    with Flow("order") as flow:
        s = second()
        f = first()
        flow.set_dependencies(s, upstream_tasks=[f])
    assert flow.run().is_successful()
    assert order == ["first", "second"]


def test_calling_a_task_outside_a_flow_says_how_to_run_it():
    with pytest.raises(FlowRunError, match=r"outside a `with Flow\(...\)` block; use extract.run"):
        extract(3)
    assert extract.run(2) == [0, 1]


def test_cycle_is_reported_by_name():
    with Flow("cyc") as flow:
        a = extract(1)
        b = double(a)
    flow.add_edge(b, a)
    with pytest.raises(FlowRunError, match="dependency cycle among: double, extract"):
        flow.run()


def test_structure_is_json_and_describes_tasks_edges_parameters():
    s = make_flow().structure()
    json.dumps(s)
    assert s["name"] == "etl"
    assert [t["name"] for t in s["tasks"]] == ["double", "extract", "n", "total"]
    assert s["parameters"] == [{"name": "n", "default": 3, "required": False}]
    assert {"upstream": "n", "downstream": "extract", "key": "n"} in s["edges"]


def test_fingerprint_is_stable_across_processes_and_changes_with_a_rename(tmp_path):
    script = tmp_path / "fp.py"
    script.write_text(
        "from gitflows import Flow, Parameter, task\n"
        "@task\n"
        "def extract(n):\n    return list(range(n))\n"
        "with Flow('etl') as flow:\n    extract(Parameter('n', default=3))\n"
        "print(flow.fingerprint())\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="random")
    outs = {subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                           env=env).stdout.strip() for _ in range(2)}
    assert len(outs) == 1 and len(next(iter(outs))) == 64
    script.write_text(script.read_text().replace("def extract", "def extract_rows").replace(
        "extract(Parameter", "extract_rows(Parameter"))
    renamed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout.strip()
    assert renamed not in outs


def test_fingerprint_changes_with_parameter_default():
    a = make_flow().fingerprint()
    with Flow("etl") as other:
        n = Parameter("n", default=4)
        total(double(extract(n)))
    assert a == make_flow().fingerprint()
    assert a != other.fingerprint()


def test_select_flow_never_takes_the_first_silently():
    a, b = Flow("a"), Flow("b")
    assert select_flow([a, b], "b", "x.py") is b
    with pytest.raises(FlowNotFoundError, match=r"Multiple flows found in x.py \('a', 'b'\)"):
        select_flow([a, b], None, "x.py")
    with pytest.raises(FlowNotFoundError, match=r"Failed to find flow 'c' in x.py; flows found: 'a', 'b'"):
        select_flow([a, b], "c", "x.py")
    with pytest.raises(FlowNotFoundError, match="No flows found in x.py"):
        select_flow([], None, "x.py")
