"""Docker runner: time from claim to first task for a cached image, and containers left behind.

Starts the same servers the tests do (a dockerd and a docker-registry on 127.0.0.1), builds and pushes an
image holding one trivial flow (which fails when asked), registers it, then:

- runs it N times through one agent (image cached after the first pull), measuring for each run the
  time from its claim to its task's first output line (the task prints its start time);
- runs 100 runs where every third fails and an agent process is SIGKILLed twice mid-run, then
  counts the run containers left on the daemon once the runs are done.

Run: .venv/bin/python bench/bench_docker_runner.py [--runs 10]   (needs root: it starts dockerd)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gitflows.registry import FlowVersion, open_registry  # noqa: E402
from gitflows.script import extract_flow_from_file  # noqa: E402
from gitflows.storage import Docker  # noqa: E402
from tests.servers.docker_servers import Dockerd, Registry, base_rootfs_tar, wheelhouse  # noqa: E402

FLOW = '''
import os, time
from gitflows import Flow, Parameter, task

@task
def work(fail, pause):
    print("FIRST", time.time(), flush=True)
    time.sleep(float(pause))
    if fail:
        raise RuntimeError("asked to fail")

with Flow("bench-docker") as flow:
    work(Parameter("fail", default=False), Parameter("pause", default=0))
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    os.environ["GITFLOWS_CACHE_DIR"] = str(tmp / "cache")
    for sub in ("dockerd", "registry", "wheels"):
        (tmp / sub).mkdir()
    daemon, registry = Dockerd(tmp / "dockerd"), Registry(tmp / "registry")
    try:
        import docker

        client = docker.APIClient(base_url=daemon.url)
        client.import_image(src=str(base_rootfs_tar()), repository="bench/python", tag="3.11")
        script = tmp / "flow.py"
        script.write_text(FLOW)
        storage = Docker(registry_url=registry.url, base_image="bench/python:3.11", local_image=True,
                         image_name="bench/docker", image_tag="v1", wheelhouse=str(wheelhouse(tmp / "wheels")),
                         base_url=daemon.url)
        storage.add_flow(extract_flow_from_file(str(script)))
        storage.build(push=True)
        url = str(tmp / "registry.db")
        reg = open_registry(url)
        reg.register(FlowVersion(name="bench-docker", version=0, storage=storage.serialize(), repo=None, path=None,
                                 requested_ref=None, sha=None, closure=[], fingerprint="fp", labels=[],
                                 state="confirmed", registered_at=0.0))
        env = {**os.environ, "GITFLOWS_REGISTRY": url, "PYTHONPATH": str(ROOT)}

        # 1. claim -> first task output, image cached
        delays = []
        for _ in range(args.runs):
            run = reg.create_run("bench-docker")
            subprocess.run([sys.executable, "-m", "gitflows", "agent", "--once", "--poll", "0.05"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
            done = reg.get_run(run.id)
            first = next(float(line.split()[1]) for line in (done.logs or "").splitlines() if line.startswith("FIRST"))
            delays.append(first - float(done.started_at or 0))  # started: right after the claim
        print(f"claim -> first task output, cached image, {args.runs} runs: p50 {statistics.median(delays):.2f} s, "
              f"max {max(delays):.2f} s")

        # 2. 100 runs, every third failing, two agents SIGKILLed mid-run
        for i in range(100):
            reg.create_run("bench-docker", parameters={"fail": i % 3 == 0, "pause": 0.5 if i in (10, 50) else 0})
        killed = 0
        while killed < 2:
            agent = subprocess.Popen([sys.executable, "-m", "gitflows", "agent", "--lease", "5", "--poll", "0.05"],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(8)
            os.kill(agent.pid, signal.SIGKILL)
            agent.wait()
            killed += 1
        subprocess.run([sys.executable, "-m", "gitflows", "agent", "--once", "--lease", "5", "--poll", "0.05"],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
        time.sleep(6)  # a killed agent's last container ends; the next run removes it
        subprocess.run([sys.executable, "-m", "gitflows", "agent", "--once", "--poll", "0.05"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        states = [r.state for r in reg.runs("bench-docker", limit=100)]
        left = client.containers(all=True, filters={"label": "io.gitflows.run-container"})
        print(f"100 runs (every third failing, 2 agents SIGKILLed): {states.count('success')} success, "
              f"{states.count('failed')} failed, {states.count('lost')} lost, "
              f"{sum(s in ('scheduled', 'claimed', 'running') for s in states)} not finished; "
              f"run containers left on the daemon: {len(left)}")
    finally:
        registry.stop()
        daemon.stop()


if __name__ == "__main__":
    main()
