"""A real dask.distributed cluster on 127.0.0.1: a scheduler and worker processes, each its own `dask` command.

Workers run from an empty folder with no PYTHONPATH, so they can import gitflows (installed) but nothing
of the repository a flow comes from: whatever a task needs must travel with it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DaskCluster:
    def __init__(self, tmp: Path, workers: int = 2, threads: int = 4) -> None:
        self.tmp = tmp
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.dask = str(Path(sys.executable).with_name("dask"))
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.env["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"
        self.scheduler = self._start("scheduler", [self.dask, "scheduler", "--host", "127.0.0.1", "--port",
                                                   str(self.port), "--no-dashboard"])
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.threads = threads
        self._wait_for_scheduler()
        for i in range(workers):
            self.add_worker(f"w{i + 1}")
        self.wait_for_workers(workers)

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        folder = self.tmp / name
        folder.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(argv, cwd=folder, env=self.env, stdout=open(folder / "log", "wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)

    def add_worker(self, name: str) -> None:
        # --no-nanny: the worker is this process, so killing it kills the worker (a nanny would restart it)
        self.workers[name] = self._start(name, [self.dask, "worker", self.address, "--name", name, "--nthreads",
                                                str(self.threads), "--host", "127.0.0.1", "--no-dashboard",
                                                "--no-nanny"])

    def _wait_for_scheduler(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                pytest.fail(f"dask scheduler exited: {(self.tmp / 'scheduler' / 'log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        pytest.fail("the dask scheduler did not listen within 60 s")

    def worker_addresses(self) -> dict[str, str]:
        """Worker name -> address, as the scheduler knows them."""
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as client:
            return {w["name"]: address for address, w in client.scheduler_info()["workers"].items()}

    def wait_for_workers(self, count: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for name, proc in self.workers.items():
                if proc.poll() is not None:
                    pytest.fail(f"dask worker {name} exited: {(self.tmp / name / 'log').read_text()[-2000:]}")
            if len(self.worker_addresses()) >= count:
                return
            time.sleep(0.3)
        pytest.fail(f"{count} dask workers did not join within 60 s")

    def kill_worker(self, name: str) -> None:
        proc = self.workers[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in [*self.workers.values(), self.scheduler]:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
