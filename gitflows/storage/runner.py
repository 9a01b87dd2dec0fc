"""The env runner every storage returns from ``get_env_runner(flow_location)`` (Prefect's 2020 API).

``storage.get_env_runner(location).run(env)`` runs the flow stored at *location* in a child
process (``python -m gitflows.child``) whose environment is this process's plus *env*. The child
loads the flow through the storage exactly as an agent does — pinned commit, verified files,
verified pickles — resolves the storage's ``secrets`` (see :mod:`gitflows.context`), runs the
flow, and reports back. Its output is streamed into a bounded buffer (the last ``max_log``
characters are kept) with every secret masked.

The child is the leader of its own process group, and nothing it starts outlives the run:

* on timeout, or when *tick* says the run is no longer this process's (an agent whose lease was
  taken over), the whole group is killed at once;
* the child holds the read end of a pipe whose write end only this process has: when this process
  dies (SIGKILL, OOM), the pipe closes and the child kills its group;
* with ``keepalive`` (the agent passes 90% of its lease), this process writes to that pipe after
  every successful *tick*; a child not fed for ``keepalive`` seconds — its agent stalled (SIGSTOP, a
  VM pause) or cut off from the registry, so its lease may be reaped and the run started elsewhere —
  kills its group rather than run twice.

The Docker storage returns its own runner, with the same ``run(env)``, that runs the flow inside
a container of its image.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from gitflows.outcome import MAX_LOG, RunResult  # noqa: F401 - re-exported for runners
from gitflows.outcome import Tail as _Tail
from gitflows.redact import redact


class ChildProcessRunner:
    """Runs one flow of a storage in a child process; ``run(env)`` blocks until it ends."""

    def __init__(self, storage: Any, flow_location: str | None = None, flow_name: str | None = None,
                 parameters: Mapping[str, Any] | None = None, max_log: int = MAX_LOG) -> None:
        self.storage_data: dict[str, Any] = storage if isinstance(storage, dict) else storage.serialize()
        self.flow_location = flow_location
        self.flow_name = flow_name
        self.parameters = dict(parameters or {})
        self.max_log = max_log
        self.warm = False  # True: fork each run from a warm worker (see _WarmChild)

    def __repr__(self) -> str:
        return (f"ChildProcessRunner({self.storage_data.get('type')}, location={self.flow_location!r}, "
                f"flow={self.flow_name!r})")

    def run(self, env: Mapping[str, str] | None = None, *, timeout: float | None = None,
            tick: Callable[[], bool | None] | None = None, tick_every: float = 5.0,
            keepalive: float | None = None, echo: Callable[[str], object] | None = None) -> RunResult:
        """Run the flow with *env* added to the environment; *echo* receives each output line as it comes.

        *tick* is called every *tick_every* seconds while the flow runs (an agent heartbeats there). It
        returns True when the run is still this process's (the child's *keepalive* is fed), False when
        it is not (the child's group is killed at once, the result is ``failed`` with ``lost=True``), or
        None when it cannot tell (nothing changes; the keepalive runs down)."""
        bad = [k for k, v in (env or {}).items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            from gitflows.errors import WrongTypeError

            raise WrongTypeError(f"run(env): environment variables are str -> str; bad entries: {bad!r}")
        with tempfile.TemporaryDirectory(prefix="gitflows-run-") as tmp:
            spec, result = os.path.join(tmp, "spec.json"), os.path.join(tmp, "result.json")
            watch_read, watch_write = os.pipe()
            with open(spec, "w", encoding="utf-8") as fh:
                json.dump({"storage": self.storage_data, "flow_name": self.flow_name,
                           "flow_location": self.flow_location, "parameters": self.parameters,
                           "watch_fd": watch_read, "keepalive": keepalive}, fh)
            child_env = dict(os.environ)
            child_env.update(env or {})
            try:
                proc = self._start(spec, result, child_env, watch_read)
            except BaseException:
                os.close(watch_write)
                raise
            finally:
                os.close(watch_read)
            tail = _Tail(self.max_log)
            reader = threading.Thread(target=self._read, args=(proc, tail, echo), daemon=True)
            reader.start()
            deadline = None if timeout is None else time.monotonic() + timeout
            stopped: str | None = None
            lost = False
            try:
                while proc.poll() is None:
                    if deadline is not None and time.monotonic() > deadline:
                        stopped = f"timed out after {timeout:.0f}s"
                        break
                    held = tick() if tick is not None else True
                    if held is False:
                        stopped, lost = "stopped: the run is no longer this agent's (its lease was taken over)", True
                        break
                    if held:
                        _feed(watch_write)
                    wait = tick_every if deadline is None else max(0.01, min(tick_every, deadline - time.monotonic()))
                    try:
                        proc.wait(wait)
                    except subprocess.TimeoutExpired:
                        pass
            finally:
                if proc.poll() is None or stopped:
                    _kill_group(proc)
                os.close(watch_write)
                proc.wait()
                # a detached grandchild may hold the pipe open: do not wait for it forever
                reader.join(2)
            logs = redact(tail.text())
            if stopped:
                return RunResult("failed", stopped, logs, proc.returncode, lost=lost)
            try:
                with open(result, encoding="utf-8") as fh:
                    outcome = json.load(fh)
            except (OSError, ValueError):
                return RunResult("failed", f"the run's process exited with code {proc.returncode} and no result",
                                 logs, proc.returncode)
            error = outcome.get("error")
            return RunResult(str(outcome.get("state")), redact(error) if error else None, logs, proc.returncode,
                             dict(outcome.get("tasks") or {}))

    def _start(self, spec: str, result: str, env: dict[str, str], watch_read: int) -> Any:
        """The child process running ``gitflows.child`` on *spec*: a fresh interpreter, or with ``warm``, a
        fork of a warm worker (imports done once; still one process per run, its own modules)."""
        if self.warm:
            return _WarmChild(spec, result, env, watch_read)
        return subprocess.Popen([sys.executable, "-m", "gitflows.child", spec, result], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                pass_fds=(watch_read,))

    @staticmethod
    def _read(proc: Any, tail: _Tail, echo: Callable[[str], object] | None) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = redact(raw.decode("utf-8", "replace"))
            tail.add(line)
            if echo is not None:
                echo(line.rstrip("\n"))


#: modules the warm worker imports once; every run forked from it starts with them loaded
WARM_PRELOAD = ["gitflows", "gitflows.child", "gitflows.storage", "gitflows.loader", "gitflows.script",
                "gitflows.context", "gitflows.cache", "gitflows.storage.local", "gitflows.storage.git",
                "gitflows.storage.github", "gitflows.storage.gitlab", "gitflows.storage.s3"]
_warm_context: Any = None
_warm_lock = threading.Lock()


def _warm() -> Any:
    """The warm worker: multiprocessing's forkserver, a single-threaded process that imported gitflows once
    and forks a child per run (forking the agent itself, which has threads, would not be safe)."""
    global _warm_context
    with _warm_lock:
        if _warm_context is None:
            import multiprocessing

            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(WARM_PRELOAD)
            _warm_context = context
        return _warm_context


def _warm_main(spec: str, result: str, env: dict[str, str], out: Any, watch: Any) -> None:
    """A warm worker's child: a session of its own (its group is what gets killed), output to the agent's
    pipe, the run's environment, then ``gitflows.child`` as a fresh interpreter would run it."""
    import io

    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out.fileno(), 1)
    os.dup2(out.fileno(), 2)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    os.environ.clear()
    os.environ.update(env)
    from gitflows import child

    code = 2
    try:
        code = child.main(["gitflows.child", spec, result], watch_fd=watch.fileno())
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class _no_main_to_prepare:  # noqa: N801 - used as a context manager
    """multiprocessing re-imports the parent's ``__main__`` in each child ("prepare"): the agent's CLI, a
    test runner, or ``<stdin>`` (which fails). A run needs none of it: hide it while a child is started."""

    def __enter__(self) -> None:
        import types

        self.saved = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            sys.modules["__main__"] = self.saved


class _WarmChild:
    """A run forked from the warm worker, with the part of ``subprocess.Popen`` the runner uses."""

    def __init__(self, spec: str, result: str, env: dict[str, str], watch_read: int) -> None:
        from multiprocessing.connection import Connection

        context = _warm()
        out_read, out_write = os.pipe()
        out = Connection(out_write, readable=False)
        watch = Connection(os.dup(watch_read), writable=False)
        try:
            self.proc = context.Process(target=_warm_main, args=(spec, result, env, out, watch), daemon=False)
            with _warm_lock, _no_main_to_prepare():
                self.proc.start()
        except BaseException:
            os.close(out_read)
            raise
        finally:
            out.close()  # the child has its own copies now: end of file comes when it (and what it started) ends
            watch.close()
        self.pid = self.proc.pid
        self.returncode: int | None = None
        self.stdout = os.fdopen(out_read, "rb")

    def poll(self) -> int | None:
        if self.proc.exitcode is None:
            return None
        self.returncode = self.proc.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self.proc.join(timeout)
        if self.proc.exitcode is None:
            raise subprocess.TimeoutExpired("gitflows warm child", timeout or 0)
        self.returncode = self.proc.exitcode
        return self.returncode


def _feed(fd: int) -> None:
    """One keepalive byte to the child (never blocks: a child that stopped reading is being killed)."""
    try:
        os.set_blocking(fd, False)
        os.write(fd, b".")
    except (BlockingIOError, BrokenPipeError):
        pass


def _kill_group(proc: Any) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
