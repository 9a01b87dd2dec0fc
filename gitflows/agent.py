"""The agent: claims due runs from the registry and runs each flow, pinned, in a child process.

Safe to run many at once, on one machine or many (PostgreSQL): a run is claimed by exactly one
agent (:meth:`Registry.claim`), which stores its ``lease`` on the run. While a run is in hand the
agent heartbeats; a run whose agent stopped heartbeating for that lease is rescheduled by any agent
(``reap``) until the flow's attempts are used up, then marked lost.

A run is never executed twice at once: an agent that finds a run is no longer its own (``start`` or
``heartbeat`` refused after a stall) kills the child's whole process group at once, and the child
kills its group itself when its agent dies or renews no lease for 90% of it (see
:mod:`gitflows.storage.runner`). SIGTERM (and Ctrl-C) stop claiming; runs in hand finish.
"""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitflows.docker.runner import Limits

from gitflows.errors import FlowNotFoundError, GitflowsError
from gitflows.outcome import RunResult, Tail
from gitflows.redact import get_logger, redact
from gitflows.register import remote_status
from gitflows.registry import FlowVersion, Registry, Run, open_registry
from gitflows.registry.schema import SchemaTooNewError
from gitflows.registry.sql import UnreadableRowError, agent_name

log = get_logger(__name__)
MAX_LOG = 64 * 1024


class Agent:
    def __init__(self, registry_url: str | None = None, labels: list[str] | None = None, concurrency: int = 1,
                 lease: float = 30.0, heartbeat: float | None = None, timeout: float = 3600.0, poll: float = 1.0,
                 confirm_grace: float = 600.0, name: str | None = None, echo: bool = False,
                 warm: bool = False, container_limits: Limits | None = None, executor: str | None = None) -> None:
        self.url = registry_url
        self.labels = set(labels or [])
        self.concurrency = max(1, concurrency)
        self.lease = lease
        # at least two heartbeats per lease: the child ends itself when none reached it for 90% of the lease
        self.heartbeat_every = min(heartbeat or max(0.2, lease / 3), lease / 2)
        self.timeout = timeout
        self.poll = poll
        self.confirm_grace = confirm_grace
        self.name = name or agent_name()
        self.echo = echo
        self.warm = warm  # fork each run's child from a warm worker (storage.runner: imports done once)
        self.container_limits = container_limits  # gitflows.docker.runner.Limits for runs in containers
        #: where flows without an executor of their own run their tasks (gitflows.executors.from_spec text)
        self.executor = executor
        self.stopping = threading.Event()
        self._local = threading.local()
        self.done: list[tuple[int, str]] = []
        self._said_skip: set[int] = set()
        self._scheduled_at = 0.0
        self._seen_at = float("-inf")  # when this agent last recorded itself as alive (monotonic)

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
        self.registry().conn()  # a registry unreachable, or of a newer schema, at start ends the agent at once
        self._install_signals()
        in_hand: dict[int, Future[str]] = {}
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="gitflows-run") as pool:
            while not self.stopping.is_set():
                for run_id in [r for r, f in in_hand.items() if f.done()]:
                    in_hand.pop(run_id).result()
                self._reap()
                self._seen()
                self._schedule()
                free = self.concurrency - len(in_hand)
                try:
                    claimed = self._claim(free) if free > 0 else []
                except GitflowsError as exc:  # the registry is unreachable for longer than it reconnects
                    if once or isinstance(exc, SchemaTooNewError):
                        raise
                    log.warning("claiming failed: %s", exc)
                    claimed = []
                for run in claimed:
                    in_hand[run.id] = pool.submit(self._execute_guarded, run)
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

    def _seen(self) -> None:
        """Say in the registry that this agent is alive (at most every 5 s): the web page lists live agents."""
        now = time.monotonic()
        if now - self._seen_at < 5.0:
            return
        self._seen_at = now
        try:
            self.registry().agent_seen(self.name, sorted(self.labels))
        except SchemaTooNewError:
            raise
        except GitflowsError as exc:
            log.warning("could not record this agent as seen: %s", exc)

    def _reap(self) -> None:
        try:
            for run_id, state in self.registry().reap(self.lease):
                self.say(f"run {run_id}: its agent stopped heartbeating; now {state}")
        except SchemaTooNewError:
            raise  # upgraded under this agent by a newer gitflows: stop, the message says what to do
        except GitflowsError as exc:
            log.warning("reaping failed: %s", exc)

    def _schedule(self) -> None:
        """Create the runs of scheduled flows whose slots are due (at most once a second). Every agent does
        this; the registry's uniqueness rule on (flow, slot) lets exactly one create each slot's run."""
        now = time.time()
        if now - self._scheduled_at < 1.0:
            return
        self._scheduled_at = now
        try:
            registry = self.registry()
            paused = registry.paused()
            for version in registry.scheduled():
                if version.unreadable or version.state != "confirmed" or version.name in paused:
                    continue
                self._schedule_flow(registry, version, now)
        except SchemaTooNewError:
            raise
        except GitflowsError as exc:  # the registry away, a bad recorded schedule: runs in hand go on
            log.warning("scheduling failed: %s", exc)

    def _schedule_flow(self, registry: Registry, version: FlowVersion, now: float) -> None:
        from datetime import datetime, timezone

        from gitflows.schedules import Schedule

        schedule = Schedule.from_dict(version.schedule or {})
        since = max(version.registered_at, registry.last_slot_due(version.name) or 0.0)
        for slot in schedule.due(datetime.fromtimestamp(now, timezone.utc),
                                 datetime.fromtimestamp(since, timezone.utc)):
            run = registry.create_slot_run(version, slot.key, slot.at.timestamp(), slot.parameters)
            if run is not None:
                self.say(f"run {run.id}: {version.name} v{version.version} scheduled for "
                         f"{slot.at.isoformat(timespec='seconds')}")

    def _matches(self, run: Run) -> bool:
        """Whether this agent takes *run*: its labels fit, or its row is broken (any agent fails those)."""
        try:
            version = self.registry().get_version(run.flow_name, run.version)
        except (FlowNotFoundError, UnreadableRowError):
            return True
        return run.unreadable is not None or set(version.labels) <= self.labels

    def _broken(self, run: Run) -> str | None:
        """Why *run* can never be run (an unreadable row, a version that no longer exists), or None."""
        if run.unreadable:
            return f"run {run.id} is unreadable: {run.unreadable}"
        try:
            self.registry().get_version(run.flow_name, run.version)
        except (FlowNotFoundError, UnreadableRowError) as exc:
            return str(exc)
        return None

    def _due_for_me(self) -> bool:
        return any(self._matches(r) for r in self.registry().due(limit=200))

    def _claim(self, free: int) -> list[Run]:
        got: list[Run] = []
        for run in self.registry().due(limit=max(20, free * 4)):
            if len(got) >= free:
                break
            broken = self._broken(run)
            if broken:
                if self.registry().claim(run.id, self.name, self.lease):
                    self._give_up(run, f"cannot be run: {broken}")
            elif not self._matches(run):
                self._skipped(run)
            elif self.registry().claim(run.id, self.name, self.lease):
                got.append(self.registry().get_run(run.id))
        return got

    def _skipped(self, run: Run) -> None:
        """Say once per run why this agent leaves it (labels it lacks), instead of skipping it silently."""
        if run.id in self._said_skip:
            return
        self._said_skip.add(run.id)
        try:
            needed = set(self.registry().get_version(run.flow_name, run.version).labels)
        except GitflowsError:
            return
        mine = ", ".join(sorted(self.labels)) or "none"
        self.say(f"run {run.id}: {run.flow_name} v{run.version} needs labels {', '.join(sorted(needed - self.labels))}"
                 f" (this agent has: {mine}); left for an agent that has them")

    # -- one run ------------------------------------------------------------------------
    def _execute_guarded(self, run: Run) -> str:
        """Run one claimed run; whatever goes wrong with it is recorded on it, never ends the agent."""
        try:
            return self._execute(run)
        except Exception as exc:  # noqa: BLE001 - one run's fault (a bad row, the database) must not end the loop
            return self._give_up(run, f"the agent could not run it: {_one_line(exc)}")

    def _give_up(self, run: Run, reason: str) -> str:
        """Mark *run* failed with *reason* (best effort: the database may be what failed)."""
        self.say(f"run {run.id}: failed: {reason}")
        try:
            if not self.registry().finish(run.id, self.name, "failed", reason):
                return "dropped"
        except Exception as exc:  # noqa: BLE001
            log.warning("run %s: could not mark it failed either (%s); its lease will expire and it is reaped",
                        run.id, _one_line(exc))
            return "dropped"
        self.done.append((run.id, "failed"))
        return "failed"

    def _execute(self, run: Run) -> str:
        reg = self.registry()
        version = reg.get_version(run.flow_name, run.version)
        if version.state == "pending":
            status = remote_status(version)
            if status.visible:
                reg.confirm(version.name, version.version)
                self.say(f"{version.name} v{version.version}: commit {version.sha} is on the remote; confirmed")
            elif status.final:  # waiting cannot help: say the real cause now
                return self._give_up(run, f"{version.name} v{version.version} cannot be run: {status.reason}")
            elif time.time() - run.created_at > self.confirm_grace:
                never_confirmed = (f"{version.name} v{version.version}: commit {version.sha} never reached the "
                                   f"remote within {self.confirm_grace:.0f}s; an unconfirmed version is never run")
                reg.finish(run.id, self.name, "failed", never_confirmed)
                self.say(f"run {run.id}: failed: {never_confirmed}")
                self.done.append((run.id, "failed"))
                return "failed"
            else:
                reg.postpone(run.id, self.name, min(5.0, self.confirm_grace / 4), f"waiting: {status.reason}")
                self.say(f"run {run.id}: {version.name} v{version.version} is pending ({status.reason}); will retry")
                return "postponed"
        if not reg.start(run.id, self.name):
            self.say(f"run {run.id}: no longer ours before it started (its lease expired); left to its new agent")
            return "dropped"
        self.say(f"run {run.id}: {run.flow_name} v{run.version} at {version.sha or '-'} (attempt {run.attempts})")
        outcome = self._child(run, version.storage)
        state, error, logs, lost = outcome.state, outcome.error, outcome.logs, outcome.lost
        if lost:
            self.say(f"run {run.id}: no longer ours (its lease expired and it was taken over); its processes "
                     "were killed and nothing is recorded")
            return "dropped"
        try:
            recorded = reg.finish(run.id, self.name, state, error, logs, outcome.tasks or None)
        except Exception as exc:  # noqa: BLE001 - the outcome could not be stored: store why, go on
            return self._give_up(run, f"the run ended {state} but the agent could not record its outcome "
                                      f"({_one_line(exc)})")
        if not recorded:
            self.say(f"run {run.id}: finished but no longer ours (lease expired); result dropped")
            return "dropped"
        if self.echo and logs.strip():
            print("\n".join(f"    | {line}" for line in logs.rstrip().splitlines()), flush=True)
        self.say(f"run {run.id}: {state}" + (f": {error}" if error else ""))
        self.done.append((run.id, state))
        return state

    def _heartbeat(self, run: Run, tail: Tail | None = None) -> bool | None:
        """Extend the run's lease and store its output so far (*tail*): True when extended, False when the run
        is no longer ours, None when the registry could not be reached (it reconnects; the child ends itself if
        the lease runs out)."""
        try:
            return self.registry().heartbeat(run.id, self.name, redact(tail.text()) if tail is not None else None)
        except GitflowsError as exc:
            log.warning("run %s: heartbeat failed: %s", run.id, exc)
            return None

    def _child(self, run: Run, storage: dict[str, object]) -> RunResult:
        """Run the flow through its storage's env runner (a child process; a container for Docker): the agent
        does not special-case storages. Its output so far is stored with each heartbeat (the web page shows
        it while the run goes on)."""
        from gitflows.storage import from_dict

        _learn_secrets(storage)
        runner = from_dict(dict(storage)).get_env_runner(run.flow_name, parameters=run.parameters)
        runner.max_log = MAX_LOG
        if hasattr(runner, "warm"):  # a child-process runner (not a container): start it warm if asked
            runner.warm = self.warm
        if hasattr(runner, "labels"):  # a container: say which run and which agent it belongs to
            runner.labels.update({"io.gitflows.run": str(run.id), "io.gitflows.agent": self.name})
        if self.container_limits is not None and hasattr(runner, "limits"):
            runner.limits = self.container_limits
        env = {"GITFLOWS_EXECUTOR": self.executor} if self.executor else None
        tail = Tail(MAX_LOG)
        result: RunResult = runner.run(env, timeout=self.timeout, tick=lambda: self._heartbeat(run, tail),
                                       tick_every=self.heartbeat_every, keepalive=0.9 * self.lease,
                                       echo=lambda line: tail.add(line + "\n"))
        return result


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": "))


def _learn_secrets(storage: dict[str, object]) -> None:
    """Resolve the secrets *storage* names that this agent can see, so their values are masked in what it
    records and prints even when the child failed to mask them (a grandchild writing to the descriptor)."""
    from gitflows.secrets import resolve_optional_secret

    names = storage.get("secrets")
    for name in names if isinstance(names, list) else []:
        if isinstance(name, str):
            try:
                resolve_optional_secret(name)
            except GitflowsError as exc:  # e.g. a secrets file readable by others: the child reports it
                log.warning("secret %s: %s", name, exc)
