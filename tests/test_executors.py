"""Executors and mapping (issue 16): the same flow gives the same results and states on every executor;
mapping as Prefect 1 had it; independent tasks overlap on parallel executors; results that cannot travel
back from a worker fail the task by name."""

from __future__ import annotations

import threading
import time

import pytest

from gitflows import Flow, Parameter, task, unmapped
from gitflows.errors import ConfigurationError, FlowRunError
from gitflows.executors import DaskExecutor, LocalDaskExecutor, LocalExecutor, from_spec


@task
def numbers(n):
    return list(range(n))


@task
def add(x, y):
    return x + y


@task
def check(x):
    if x == 13:
        raise ValueError("thirteen is unlucky")
    return x * 2


@task(max_retries=2, retry_delay=0.01)
def flaky(x, marker):
    """Fails on its first attempt for each x (the attempts are counted in a file: any process on this machine)."""
    with open(marker, "a") as fh:
        fh.write(f"{x}\n")
    with open(marker) as fh:
        if fh.read().split().count(str(x)) < 2:
            raise RuntimeError(f"first attempt for {x}")
    return x


@task
def total(xs):
    return sum(xs)


@task
def pairs(xs, ys):
    return list(zip(xs, ys, strict=False))


def build() -> Flow:
    with Flow("fan") as flow:
        n = Parameter("n", default=5)
        marker = Parameter("marker")
        xs = numbers(n)
        plus = add.map(xs, y=unmapped(10))          # 10..14
        doubled = check.map(plus)                   # nested map: child by child; 13 fails
        retried = flaky.map(xs, marker=unmapped(marker))
        total(plus)                                 # reduce over a mapped task
        total(doubled)                              # a reduce over a failed child: skipped
        pairs(retried, add.map([1, 2, 3], [10, 20]))  # zips the shortest: 2 children
    return flow


def summary(state):
    out = {}
    for name, s in state.result.items():
        if name == "marker":  # a file per executor
            continue
        children = [(c.state, c.result, c.attempts) for c in s.map_states] if s.map_states is not None else None
        out[name] = (s.state, s.result, children)
    return out


@pytest.fixture(scope="module")
def local_cluster():
    """A dask.distributed cluster of 2 worker processes x 2 threads on 127.0.0.1, shared by the module."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    yield cluster
    cluster.close()


def executors(cluster):
    return {
        "local": LocalExecutor(),
        "local-dask threads": LocalDaskExecutor("threads", num_workers=4),
        "local-dask processes": LocalDaskExecutor("processes", num_workers=2),
        "dask cluster": DaskExecutor(address=cluster.scheduler_address),
    }


@pytest.mark.slow
def test_same_flow_same_results_and_states_on_every_executor(local_cluster, tmp_path):
    flow = build()
    seen = {}
    for name, executor in executors(local_cluster).items():
        state = flow.run({"marker": str(tmp_path / f"attempts-{name}")}, executor=executor)
        seen[name] = (state.state, state.message, summary(state))
    reference = seen["local"]
    assert reference[0] == "Failed" and reference[1] == "tasks failed: check[3]"
    states = reference[2]
    assert states["add"][0] == "Mapped" and states["add"][1] == [10, 11, 12, 13, 14]
    assert [c[0] for c in states["check"][2]] == ["Success", "Success", "Success", "Failed", "Success"]
    assert states["check"][1] == [20, 22, 24, None, 28]
    assert states["flaky"][1] == [0, 1, 2, 3, 4] and {c[2] for c in states["flaky"][2]} == {2}  # retried once each
    assert states["total"] == ("Success", 60, None)
    assert states["total-2"][0] == "Skipped"
    assert states["add-2"][1] == [11, 22] and states["pairs"][1] == [(0, 11), (1, 22)]
    for name, got in seen.items():
        assert got == reference, name


@pytest.mark.slow
def test_tasks_run_on_the_dask_workers_and_say_which(local_cluster, tmp_path):
    flow = build()
    state = flow.run({"marker": str(tmp_path / "m")}, executor=DaskExecutor(address=local_cluster.scheduler_address))
    known = set(local_cluster.scheduler_info["workers"])
    workers = {c.worker for c in state.result["add"].map_states}
    assert workers <= known and workers
    assert state.result["total"].worker in known


@task
def stamp(name, pause):
    start = time.time()
    time.sleep(pause)
    return (start, time.time(), threading.get_ident())


def test_independent_tasks_overlap_on_a_parallel_executor_and_not_on_the_local_one():
    with Flow("side-by-side") as flow:
        for name in ("a", "b", "c"):
            stamp(name, 0.3)
    intervals = [s.result[:2] for s in flow.run(executor=LocalDaskExecutor(num_workers=3)).result.values()]
    assert max(start for start, _ in intervals) < min(end for _, end in intervals)  # all three at once
    intervals = sorted(s.result[:2] for s in flow.run(executor=LocalExecutor()).result.values())
    assert all(prev[1] <= nxt[0] for prev, nxt in zip(intervals, intervals[1:]))  # one after another


@task
def lock_maker(x):
    return threading.Lock()


@pytest.mark.slow
def test_a_result_that_cannot_travel_back_fails_the_task_by_name(local_cluster):
    with Flow("unpicklable") as flow:
        lock_maker.map([1, 2])
    state = flow.run(executor=DaskExecutor(address=local_cluster.scheduler_address))
    assert state.is_failed()
    child = state.result["lock_maker"].map_states[0]
    assert child.is_failed()
    assert "task 'lock_maker[0]' returned a value that cannot be pickled" in child.message
    assert "_thread.lock" in child.message


def test_mapping_over_something_not_iterable_fails_that_task_saying_what_to_do():
    with Flow("bad-map") as flow:
        add.map(5, y=unmapped(1))
    state = flow.run()
    assert state.result["add"].is_failed()
    assert "task 'add' maps over argument 'x', which is not a sequence (int); map over a list, or wrap it in " \
           "unmapped(...)" in state.result["add"].message


def test_mapping_over_nothing_is_an_empty_mapped_state():
    with Flow("empty") as flow:
        total(add.map(numbers(0), y=unmapped(1)))
    state = flow.run()
    assert state.is_successful() and state.result["add"].map_states == [] and state.results["total"] == 0


def test_map_outside_a_flow_says_so():
    with pytest.raises(FlowRunError, match=r"task 'add' was called \(add.map\(...\)\) outside a `with Flow"):
        add.map([1], y=unmapped(2))


def test_structure_marks_mapped_tasks_and_edges_only():
    with Flow("plain") as plain:
        add(numbers(3), 1)
    described = plain.structure()
    assert all("mapped" not in t for t in described["tasks"]) and all("mapped" not in e for e in described["edges"])
    with Flow("plain") as mapped:
        add.map(numbers(3), unmapped(1))
    described = mapped.structure()
    assert [t["name"] for t in described["tasks"] if t.get("mapped")] == ["add"]
    assert [e for e in described["edges"] if e.get("mapped")] == [{"upstream": "numbers", "downstream": "add",
                                                                   "key": "x", "mapped": True}]
    assert plain.fingerprint() != mapped.fingerprint()


def test_the_flows_own_executor_then_the_agents_setting(monkeypatch):
    with Flow("own", executor=LocalDaskExecutor(num_workers=2)) as flow:
        stamp("a", 0.2)
        stamp("b", 0.2)
    intervals = [s.result[:2] for s in flow.run().result.values()]
    assert max(s for s, _ in intervals) < min(e for _, e in intervals)  # its own executor ran them together
    flow.executor = None
    monkeypatch.setenv("GITFLOWS_EXECUTOR", "local-dask:threads:2")
    intervals = [s.result[:2] for s in flow.run().result.values()]
    assert max(s for s, _ in intervals) < min(e for _, e in intervals)
    monkeypatch.setenv("GITFLOWS_EXECUTOR", "tcp-typo://x")
    with pytest.raises(ConfigurationError, match="executor 'tcp-typo://x': expected local, local-dask"):
        flow.run()
    with pytest.raises(FlowRunError, match="is not a gitflows executor"):
        flow.run(executor="threads")


@pytest.mark.parametrize("spec,expected", [("local", "LocalExecutor"),
                                           ("local-dask", "LocalDaskExecutor(scheduler='threads', num_workers="),
                                           ("local-dask:processes:3", "LocalDaskExecutor(scheduler='processes', "
                                                                      "num_workers=3)"),
                                           ("tcp://127.0.0.1:8786", "DaskExecutor(address='tcp://127.0.0.1:8786')")])
def test_executor_specs(spec, expected):
    assert from_spec(spec).describe().startswith(expected)


@pytest.mark.parametrize("bad,message", [
    (lambda: LocalDaskExecutor("gpu"), "scheduler='gpu'"),
    (lambda: LocalDaskExecutor(num_workers=0), "num_workers=0"),
    (lambda: DaskExecutor(address="tcp://x:1", cluster_class="a.B"), "not both"),
    (lambda: from_spec("local-dask:threads:many"), "'many' is not a whole number"),
])
def test_bad_executor_settings(bad, message):
    with pytest.raises(ConfigurationError, match=message):
        bad()


def test_no_scheduler_at_the_address_is_a_clear_error_not_a_hang():
    started = time.monotonic()
    with Flow("nowhere") as flow:
        add(1, 2)
    with pytest.raises(ConfigurationError, match="no Dask scheduler answers at tcp://127.0.0.1:9"):
        flow.run(executor=DaskExecutor(address="tcp://127.0.0.1:9", client_kwargs={"timeout": 2}))
    assert time.monotonic() - started < 30


def test_a_flow_holding_a_dask_executor_pickles(local_cluster):
    import cloudpickle

    executor = DaskExecutor(address=local_cluster.scheduler_address)
    with Flow("holds", executor=executor) as flow:
        add(1, 2)
    with executor.start():
        again = cloudpickle.loads(cloudpickle.dumps(flow))
    assert again.executor.address == local_cluster.scheduler_address and again.executor.client is None


def test_visualize_draws_mapped_tasks_and_states(tmp_path):
    flow = build()
    dot = flow.visualize()
    assert "add (mapped)" in dot.source and "style=dashed" in dot.source
    state = flow.run({"marker": str(tmp_path / "m")})
    flow.visualize(state, filename=str(tmp_path / "graph"), format="svg")
    import html

    svg = html.unescape((tmp_path / "graph.svg").read_text())
    assert "check (mapped)" in svg and "check[3]" in svg and "#eb0000" in svg  # the failed child, in red
    for name in ("numbers", "total", "total-2", "pairs", "flaky (mapped)"):
        assert name in svg
    flow.visualize(filename=str(tmp_path / "graph"), format="png")
    assert (tmp_path / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigurationError, match="format='jpeg2'"):
        flow.visualize(filename=str(tmp_path / "x"), format="jpeg2")


def test_prefect_1s_own_map_reduce_example_runs_unchanged_but_for_the_import():
    """examples/old/map_reduce.py from Prefect 1's repository, with `from prefect` made `from gitflows`."""
    from gitflows import Flow, task

    @task
    def numbers_task():
        return [1, 2, 3]

    @task
    def map_task(x):
        return x + 1

    @task
    def reduce_task(x):
        return sum(x)

    with Flow("Map / Reduce 🤓") as flow:
        numbers = numbers_task()
        first_map = map_task.map(numbers)
        second_map = map_task.map(first_map)
        reduction = reduce_task(second_map)

    state = flow.run()
    assert state.result[reduction].result == 12
    assert state.result[first_map].is_mapped() and [s.result for s in state.result[second_map].map_states] == [3, 4, 5]


def test_the_agent_refuses_a_bad_executor_before_it_starts(tmp_path):
    from .test_cli import run_cli

    result = run_cli("agent", "--once", "--executor", "dask-cluster-please",
                     env={"GITFLOWS_REGISTRY": str(tmp_path / "registry.db")})
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "executor 'dask-cluster-please': expected local, local-dask[:threads|processes[:N]]" in result.stderr
    assert "--executor" in run_cli("agent", "--help").stdout


@task
def dies(x):
    import os

    os._exit(3)  # the worker process itself ends, as a segfault or the OOM killer would end it


def test_a_process_dying_under_the_local_process_scheduler_fails_its_task_instead_of_the_run():
    with Flow("dies") as flow:
        dies.map([1, 2])
        add(1, 2)
    state = flow.run(executor=LocalDaskExecutor("processes", num_workers=2))
    assert state.is_failed()
    children = state.result["dies"].map_states
    assert children and all(c.is_failed() and "failed in Dask's processes scheduler" in c.message for c in children)
    assert state.result["add"].is_successful() and state.results["add"] == 3  # ran beside them: not at fault
