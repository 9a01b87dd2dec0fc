"""The agent: claims due runs from the registry and runs each flow, pinned, in a child process.

Safe to run many at once, on one machine or many (PostgreSQL): a run is claimed by exactly one
agent (:meth:`Registry.claim`). While a run is in hand the agent heartbeats; a run whose agent
stopped heartbeating for ``lease`` seconds is rescheduled by any agent (``reap``) until the flow's
attempts are used up, then marked lost. SIGTERM (and Ctrl-C) stop claiming; runs in hand finish.
"""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from gitflows.errors import GitflowsError
from gitflows.redact import get_logger
from gitflows.register import visible_on_remote
from gitflows.registry import Registry, Run, open_registry
from gitflows.registry.sql import agent_name

log = get_logger(__name__)
MAX_LOG = 64 * 1024


class Agent:
    def __init__(self, registry_url: str | None = None, labels: list[str] | None = None, concurrency: int = 1,
                 lease: float = 30.0, heartbeat: float | None = None, timeout: float = 3600.0, poll: float = 1.0,
                 confirm_grace: float = 600.0, name: str | None = None, echo: bool = False) -> None:
        self.url = registry_url
        self.labels = set(labels or [])
        self.concurrency = max(1, concurrency)
        self.lease = lease
        self.heartbeat_every = heartbeat or max(0.2, lease / 3)
        self.timeout = timeout
        self.poll = poll
        self.confirm_grace = confirm_grace
        self.name = name or agent_name()
        self.echo = echo
        self.stopping = threading.Event()
        self._local = threading.local()
        self.done: list[tuple[int, str]] = []

    def registry(self) -> Registry:
        reg = getattr(self._local, "registry", None)
        if reg is None:
            reg = self._local.registry = open_registry(self.url)
        return reg

    def say(self, message: str) -> None:
        log.info("%s", message)
        if self.echo:
            print(f"[agent {self.name}] {message}", flush=True)

    # -- the loop ---------------------------------------------------------------------
    def run(self, once: bool = False) -> list[tuple[int, str]]:
        """Claim and run until stopped; with *once*, until nothing is due and nothing is in hand."""
        self._install_signals()
        in_hand: dict[int, Future[str]] = {}
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="gitflows-run") as pool:
            while not self.stopping.is_set():
                for run_id in [r for r, f in in_hand.items() if f.done()]:
                    in_hand.pop(run_id).result()
                self._reap()
                free = self.concurrency - len(in_hand)
                claimed = self._claim(free) if free > 0 else []
                for run in claimed:
                    in_hand[run.id] = pool.submit(self._execute, run)
                if once and not claimed and not in_hand and not self._due_for_me():
                    break
                if not claimed:
                    self.stopping.wait(self.poll if not once else min(self.poll, 0.2))
            for future in in_hand.values():
                future.result()
        return self.done

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def stop(signum: int, frame: object) -> None:
            self.say("stopping: finishing the runs in hand, claiming no more")
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _reap(self) -> None:
        try:
            for run_id, state in self.registry().reap(self.lease):
                self.say(f"run {run_id}: its agent stopped heartbeating; now {state}")
        except GitflowsError as exc:
            log.warning("reaping failed: %s", exc)

    def _matches(self, run: Run) -> bool:
        version = self.registry().get_version(run.flow_name, run.version)
        return set(version.labels) <= self.labels

    def _due_for_me(self) -> bool:
        return any(self._matches(r) for r in self.registry().due(limit=200))

    def _claim(self, free: int) -> list[Run]:
        got: list[Run] = []
        for run in self.registry().due(limit=max(20, free * 4)):
            if len(got) >= free:
                break
            if self._matches(run) and self.registry().claim(run.id, self.name):
                got.append(self.registry().get_run(run.id))
        return got

    # -- one run ------------------------------------------------------------------------
    def _execute(self, run: Run) -> str:
        reg = self.registry()
        version = reg.get_version(run.flow_name, run.version)
        if version.state == "pending":
            if visible_on_remote(version):
                reg.confirm(version.name, version.version)
                self.say(f"{version.name} v{version.version}: commit {version.sha} is on the remote; confirmed")
            elif time.time() - run.created_at > self.confirm_grace:
                error = (f"{version.name} v{version.version}: commit {version.sha} never reached the remote within "
                         f"{self.confirm_grace:.0f}s; an unconfirmed version is never run")
                reg.finish(run.id, self.name, "failed", error)
                self.say(f"run {run.id}: failed: {error}")
                self.done.append((run.id, "failed"))
                return "failed"
            else:
                reg.postpone(run.id, self.name, min(5.0, self.confirm_grace / 4),
                             f"waiting for commit {version.sha} to reach the remote")
                self.say(f"run {run.id}: {version.name} v{version.version} is pending (commit not on the remote yet); "
                         "will retry")
                return "postponed"
        reg.start(run.id, self.name)
        self.say(f"run {run.id}: {run.flow_name} v{run.version} at {version.sha or '-'} (attempt {run.attempts})")
        state, error, logs = self._child(run, version.storage)
        if not reg.finish(run.id, self.name, state, error, logs):
            self.say(f"run {run.id}: finished but no longer ours (lease expired); result dropped")
            return "dropped"
        if self.echo and logs.strip():
            print("\n".join(f"    | {line}" for line in logs.rstrip().splitlines()), flush=True)
        self.say(f"run {run.id}: {state}" + (f": {error}" if error else ""))
        self.done.append((run.id, state))
        return state

    def _child(self, run: Run, storage: dict[str, object]) -> tuple[str, str | None, str]:
        from gitflows.storage.runner import ChildProcessRunner

        runner = ChildProcessRunner(storage, flow_name=run.flow_name, parameters=run.parameters, max_log=MAX_LOG)
        outcome = runner.run(timeout=self.timeout, tick=lambda: self.registry().heartbeat(run.id, self.name),
                             tick_every=self.heartbeat_every)
        return outcome.state, outcome.error, outcome.logs

