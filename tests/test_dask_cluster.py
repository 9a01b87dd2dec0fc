"""Issue 16 on a real dask.distributed cluster: a scheduler and two worker processes started here on 127.0.0.1
(`dask scheduler`, `dask worker`), working from empty folders — they have gitflows, not the repository.

- an agent runs a flow loaded from a Git storage at its pinned SHA with the agent's --executor pointing at
  the cluster: the mapped tasks run on both workers, with the sibling module they import shipped by value;
- a worker killed mid-run: its tasks are retried on the other worker, the run ends, never hangs;
- a cluster whose last worker is gone: the waiting tasks fail after no_workers_timeout, never hang.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from gitflows import Flow, task, unmapped
from gitflows.agent import Agent
from gitflows.executors import DaskExecutor
from gitflows.registry import FlowVersion, open_registry
from gitflows.storage import Git

from .conftest import git
from .servers.dask_cluster import DaskCluster

FLOW = '''
import time

from gitflows import Flow, Parameter, task, unmapped
from gitflows.storage import Git
from lib.work import square


@task
def items(n):
    return list(range(n))


@task
def on_worker(x, pause):
    from distributed import get_worker

    time.sleep(pause)
    return (square(x), get_worker().name)


@task
def report(pairs):
    values = [v for v, _ in pairs]
    workers = sorted({w for _, w in pairs})
    print("sum", sum(values), "workers", ",".join(workers), flush=True)
    return sum(values)


with Flow("fan-out", storage=Git(flow_path="flows/fan.py", repo="flows", repo_host="file://{remote}")) as flow:
    report(on_worker.map(items(Parameter("n", default=40)), pause=unmapped(0.05)))
'''
WORK = "def square(x):\n    return x * x\n"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = DaskCluster(tmp_path_factory.mktemp("dask"), workers=2, threads=2)
    yield running
    running.stop()


@pytest.fixture
def pinned_flow(tmp_path):
    """flows/fan.py and flows/lib/work.py committed and pushed to a bare remote; built (SHA and closure pinned)
    and registered as confirmed in a SQLite registry."""
    remote = tmp_path / "remote"
    remote.mkdir()
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote / "flows.git")], check=True)
    work = tmp_path / "work"
    (work / "flows" / "lib").mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=work)
    (work / "flows" / "fan.py").write_text(FLOW.replace("{remote}", str(remote)))
    (work / "flows" / "lib" / "work.py").write_text(WORK)
    git("add", "-A", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "fan-out", cwd=work)
    git("push", "-q", str(remote / "flows.git"), "main", cwd=work)
    storage = Git(flow_path="flows/fan.py", repo="flows", repo_host=f"file://{remote}")
    storage.add_flow(Flow("fan-out"))
    storage.build()
    url = str(tmp_path / "registry.db")
    open_registry(url).register(FlowVersion(
        name="fan-out", version=0, storage=storage.serialize(), repo=None, path="flows/fan.py", requested_ref=None,
        sha=storage.serialize()["sha"], closure=storage.serialize()["closures"]["fan-out"], fingerprint="fp",
        labels=[], state="confirmed", registered_at=0.0))
    return url


@pytest.mark.slow
def test_an_agent_runs_a_pinned_git_flow_on_both_workers(cluster, pinned_flow):
    workers = cluster.worker_addresses()
    assert set(workers) == {"w1", "w2"}
    reg = open_registry(pinned_flow)
    run = reg.create_run("fan-out")
    done = dict(Agent(pinned_flow, poll=0.05, timeout=300, executor=cluster.address).run(once=True))
    finished = reg.get_run(run.id)
    assert done[run.id] == "success", (finished.error, finished.logs)
    assert "Mapped   on_worker" in finished.logs and "Success  report" in finished.logs
    # report() printed on a worker, so its line is in that worker's output, not the run's logs: what ran where
    # is checked by loading the same pinned version here (a fresh cache, as another machine) and running it on
    # the same cluster
    from gitflows.storage import from_dict

    flow = from_dict(reg.latest("fan-out").storage).get_flow("fan-out")
    state = flow.run(executor=DaskExecutor(address=cluster.address))
    assert state.results["report"] == sum(x * x for x in range(40))
    ran_on = {name for _, name in state.results["on_worker"]}
    assert ran_on == {"w1", "w2"}  # both workers ran mapped children
    assert {c.worker for c in state.result["on_worker"].map_states} == set(workers.values())


@pytest.mark.slow
def test_the_workers_do_not_have_the_repository(cluster):
    """What makes the test above mean something: the sibling module cannot be imported on a worker."""
    from distributed import Client

    with Client(cluster.address, timeout=10, set_as_default=False) as client:
        found = client.run(lambda: __import__("importlib").util.find_spec("lib") is not None)
    assert set(found.values()) == {False}


@task
def slow_square(x, pause):
    time.sleep(pause)
    return x * x


@pytest.mark.slow
def test_a_worker_killed_mid_run_ends_in_retried_tasks_not_a_hang(tmp_path):
    running = DaskCluster(tmp_path / "dask", workers=2, threads=2)
    try:
        with Flow("killed") as flow:
            slow_square.map(list(range(40)), pause=unmapped(0.2))
        killer = threading.Timer(1.0, running.kill_worker, args=("w2",))
        started = time.monotonic()
        killer.start()
        state = flow.run(executor=DaskExecutor(address=running.address, no_workers_timeout=10))
        elapsed = time.monotonic() - started
        killer.join()
        children = state.result["slow_square"].map_states
        assert len(children) == 40 and elapsed < 60
        assert set(running.worker_addresses()) == {"w1"}  # w2 is gone: killed while the run went on
        # Dask reschedules the dead worker's chunks on the survivor: every child ends, successfully or with a
        # message naming the dead workers; none is left without a state
        for child in children:
            assert child.is_successful() or "Dask workers running it died" in child.message, child.message
        assert state.results["slow_square"] == [x * x for x in range(40)] or state.is_failed()
        assert {c.worker for c in children if c.is_successful()} <= set(running.worker_addresses().values()) | {
            c.worker for c in children}
    finally:
        running.stop()


@pytest.mark.slow
def test_no_worker_left_fails_the_waiting_tasks_instead_of_hanging(tmp_path):
    running = DaskCluster(tmp_path / "dask", workers=1, threads=1)
    try:
        with Flow("orphaned") as flow:
            slow_square.map(list(range(8)), pause=unmapped(0.5))
        threading.Timer(0.8, running.kill_worker, args=("w1",)).start()
        started = time.monotonic()
        state = flow.run(executor=DaskExecutor(address=running.address, no_workers_timeout=3))
        assert time.monotonic() - started < 60
        assert state.is_failed()
        messages = {c.message for c in state.result["slow_square"].map_states if not c.is_successful()}
        assert messages and all("no Dask worker for 3s" in m or "died" in m for m in messages), messages
    finally:
        running.stop()
