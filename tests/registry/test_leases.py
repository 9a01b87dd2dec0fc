"""A run is never executed twice at once: the lease a run was claimed with is stored on it and
applied by whoever reaps it; an agent that loses a run kills the child's whole process group at
once; a child kills its group when its agent dies or stalls past the lease. Real agent processes,
real SIGKILL and SIGSTOP, a flow that starts a subprocess of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from gitflows.agent import Agent

from .test_faults import register_script

REPO_ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent('''
    import os, subprocess, time
    from gitflows import Flow, Parameter, task

    @task
    def work(marker, seconds):
        helper = subprocess.Popen(["sleep", "300"])  # the flow's own subprocess, in the child's group
        with open(marker + ".pids", "a") as fh:
            fh.write(f"{os.getpid()} {helper.pid}\\n")
        end = time.time() + float(seconds)
        while time.time() < end:
            with open(marker, "a") as fh:
                fh.write(f"{os.getpid()} {time.time()}\\n")
            time.sleep(0.05)
        helper.kill()

    with Flow("worker") as flow:
        work(Parameter("marker"), Parameter("seconds", default=3))
''')


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"  # a zombie is dead, waiting to be reaped
    except FileNotFoundError:
        return False


def wait_for(predicate, seconds=20.0, step=0.02):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def pids(marker: Path) -> list[tuple[int, int]]:
    path = Path(str(marker) + ".pids")
    if not path.exists():
        return []
    return [tuple(int(x) for x in line.split()) for line in path.read_text().splitlines() if line.strip()]


def ticks(marker: Path) -> list[tuple[int, float]]:
    if not marker.exists():
        return []
    out = []
    for line in marker.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            out.append((int(parts[0]), float(parts[1])))
    return out


def agent_process(url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "GITFLOWS_REGISTRY": url, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "gitflows", "agent", "--poll", "0.05", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
            return out
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    return out or ""


def test_a_reaper_applies_the_lease_the_run_was_claimed_with(registry_url, tmp_path):
    reg = register_script(registry_url, tmp_path, "worker", WORKER)
    long, short = reg.create_run("worker"), reg.create_run("worker")
    assert reg.claim(long.id, "patient", lease=60) and reg.claim(short.id, "hasty", lease=1)
    stale = time.time() - 5
    reg._exec("UPDATE runs SET heartbeat = ? WHERE id IN (?, ?)", (stale, long.id, short.id))
    # a reaper with a 1 s lease of its own leaves the 60 s run alone; one with 100 s reaps the 1 s run
    assert reg.reap(lease=1) == [(short.id, "scheduled")]
    assert reg.get_run(long.id).state == "claimed"
    assert "lease 1s expired" in reg.get_run(short.id).error
    assert reg.claim(short.id, "hasty", lease=1)
    reg._exec("UPDATE runs SET heartbeat = ? WHERE id = ?", (stale, short.id))
    assert reg.reap(lease=100) == [(short.id, "lost")]
    assert reg.get_run(long.id).lease == 60


@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
def test_an_agent_that_loses_its_run_kills_the_flow_and_its_subprocesses_at_once(registry_url, tmp_path, warm):
    reg = register_script(registry_url, tmp_path, "worker", WORKER)
    marker = tmp_path / "marker"
    run = reg.create_run("worker", parameters={"marker": str(marker), "seconds": 30})
    agent = Agent(registry_url, lease=30, heartbeat=0.2, poll=0.05, warm=warm)
    results: dict[str, object] = {}
    thread = threading.Thread(target=lambda: results.update(done=agent.run(once=True)), daemon=True)
    thread.start()
    started = wait_for(lambda: pids(marker))
    assert started, "the flow never started"
    child, helper = started[0]
    # another agent took the run over (as after a reap): this agent's next heartbeat is refused
    reg._exec("UPDATE runs SET agent = 'other-agent' WHERE id = ?", (run.id,))
    took_over = time.monotonic()
    assert wait_for(lambda: not alive(child) and not alive(helper), seconds=5), "the lost run's processes live on"
    assert time.monotonic() - took_over < 2.0  # within a heartbeat or so, not at the flow's end
    thread.join(10)
    assert results["done"] == []  # nothing recorded as this agent's
    after = reg.get_run(run.id)
    assert after.agent == "other-agent" and after.state == "running" and after.finished_at is None


@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
def test_a_killed_agents_flow_and_its_subprocesses_die_with_it(registry_url, tmp_path, warm):
    reg = register_script(registry_url, tmp_path, "worker", WORKER)
    marker = tmp_path / "marker"
    reg.create_run("worker", parameters={"marker": str(marker), "seconds": 30})
    agent = agent_process(registry_url, "--lease", "30", *(["--warm"] if warm else []))
    try:
        started = wait_for(lambda: pids(marker), seconds=30)
        assert started, stop(agent)
        child, helper = started[0]
        os.kill(agent.pid, signal.SIGKILL)
        killed = time.monotonic()
        assert wait_for(lambda: not alive(child) and not alive(helper), seconds=5), "the flow outlived its agent"
        assert time.monotonic() - killed < 2.0  # at once, not after the 30 s lease
    finally:
        stop(agent)


def test_a_stalled_agent_never_lets_its_run_execute_twice_at_once(registry_url, tmp_path):
    """SIGSTOP an agent past its 2 s lease: its flow ends itself (and its subprocess) before the run can
    be reaped; a second agent — whose own --lease is 60 s — reaps by the run's 2 s and runs it; the first
    agent, resumed, finds the run is no longer its own and records nothing."""
    reg = register_script(registry_url, tmp_path, "worker", WORKER)
    marker = tmp_path / "marker"
    run = reg.create_run("worker", parameters={"marker": str(marker), "seconds": 4})
    first = agent_process(registry_url, "--lease", "2")
    second = None
    try:
        started = wait_for(lambda: pids(marker), seconds=30)
        assert started, stop(first)
        child, helper = started[0]
        os.kill(first.pid, signal.SIGSTOP)
        stalled = time.monotonic()
        assert wait_for(lambda: not alive(child) and not alive(helper), seconds=5), "the stalled agent's flow ran on"
        assert time.monotonic() - stalled < 2.5
        second = agent_process(registry_url, "--lease", "60")
        assert wait_for(lambda: reg.get_run(run.id).state == "success", seconds=40), reg.get_run(run.id)
        os.kill(first.pid, signal.SIGCONT)
        first_out = stop(first)
        done = reg.get_run(run.id)
        assert done.state == "success" and done.attempts == 2 and done.agent.endswith(f":{second.pid}")
        assert "no longer ours" in first_out, first_out
        copies = pids(marker)
        assert len(copies) == 2
        (one, _), (two, _) = copies
        first_ticks = [t for pid, t in ticks(marker) if pid == one]
        second_ticks = [t for pid, t in ticks(marker) if pid == two]
        assert first_ticks and second_ticks
        assert max(first_ticks) < min(second_ticks)  # never both at once
    finally:
        stop(first)
        if second is not None:
            stop(second)


@pytest.mark.parametrize("lease", [2.0])
def test_a_child_without_keepalive_from_its_agent_ends_itself(tmp_path, lease):
    """The runner's keepalive on its own: a tick that cannot reach the registry (None) feeds nothing, and
    the child ends its group after the keepalive runs down, saying why in the run's output."""
    from gitflows.storage import Local
    from gitflows.storage.runner import ChildProcessRunner

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    storage = Local(stored_as_script=True, path=str(script))
    marker = tmp_path / "marker"
    runner = ChildProcessRunner(storage, flow_name="worker", parameters={"marker": str(marker), "seconds": 30})
    began = time.monotonic()
    result = runner.run(tick=lambda: None, tick_every=0.1, keepalive=lease)
    took = time.monotonic() - began
    assert result.state == "failed" and not result.lost
    assert "the agent renewed no lease for 2s" in result.logs
    assert took < lease + 3
    (child, helper), = pids(marker)
    assert wait_for(lambda: not alive(helper), seconds=2)


COUNTER = textwrap.dedent('''
    import os
    from gitflows import Flow, Parameter, task
    import counter_state

    @task
    def count(marker):
        counter_state.hits += 1  # a module of the run's own: every run starts from 0
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()} {counter_state.hits} {os.environ.get('RUN_ENV')}\\n")

    with Flow("counter") as flow:
        count(Parameter("marker"))
''')


def test_warm_runs_are_separate_processes_with_their_own_modules(tmp_path):
    from gitflows.storage import Local
    from gitflows.storage.runner import ChildProcessRunner

    (tmp_path / "counter_state.py").write_text("hits = 0\n")
    script = tmp_path / "counter.py"
    script.write_text(COUNTER)
    marker = tmp_path / "marker"
    runner = ChildProcessRunner(Local(stored_as_script=True, path=str(script)), flow_name="counter",
                                parameters={"marker": str(marker)})
    runner.warm = True
    for _ in range(3):
        result = runner.run({"RUN_ENV": "warm"}, timeout=60)
        assert result.state == "success", (result.error, result.logs)
    rows = [line.split() for line in marker.read_text().splitlines()]
    assert [r[1:] for r in rows] == [["1", "warm"]] * 3  # fresh modules, the run's environment
    assert len({r[0] for r in rows}) == 3  # one process per run
