"""The env runner every storage returns from ``get_env_runner(flow_location)`` (Prefect's 2020 API).

``storage.get_env_runner(location).run(env)`` runs the flow stored at *location* in a child
process (``python -m gitflows.child``) whose environment is this process's plus *env*. The child
loads the flow through the storage exactly as an agent does — pinned commit, verified files,
verified pickles — resolves the storage's ``secrets`` (see :mod:`gitflows.context`), runs the
flow, and reports back. Its output is streamed into a bounded buffer (the last ``max_log``
characters are kept) with every secret masked. The child's whole process group is killed on
timeout, and the child ends itself if this process dies.

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
from dataclasses import dataclass, field
from typing import Any

from gitflows.redact import redact

MAX_LOG = 200_000


@dataclass
class RunResult:
    """What a run ended with: ``state`` is "success" or "failed"; ``logs`` the (redacted) tail of its output."""

    state: str
    error: str | None = None
    logs: str = ""
    returncode: int | None = None
    tasks: dict[str, str] = field(default_factory=dict)

    def is_successful(self) -> bool:
        return self.state == "success"


class _Tail:
    """Keeps the last *limit* characters written (a run that prints 50 MB costs *limit*, not 50 MB)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size > 2 * self.limit:
            joined = "".join(self.parts)[-self.limit:]
            self.parts, self.size = [joined], len(joined)

    def text(self) -> str:
        return "".join(self.parts)[-self.limit:]


class ChildProcessRunner:
    """Runs one flow of a storage in a child process; ``run(env)`` blocks until it ends."""

    def __init__(self, storage: Any, flow_location: str | None = None, flow_name: str | None = None,
                 parameters: Mapping[str, Any] | None = None, max_log: int = MAX_LOG) -> None:
        self.storage_data: dict[str, Any] = storage if isinstance(storage, dict) else storage.serialize()
        self.flow_location = flow_location
        self.flow_name = flow_name
        self.parameters = dict(parameters or {})
        self.max_log = max_log

    def __repr__(self) -> str:
        return (f"ChildProcessRunner({self.storage_data.get('type')}, location={self.flow_location!r}, "
                f"flow={self.flow_name!r})")

    def run(self, env: Mapping[str, str] | None = None, *, timeout: float | None = None,
            tick: Callable[[], object] | None = None, tick_every: float = 5.0,
            echo: Callable[[str], object] | None = None) -> RunResult:
        """Run the flow with *env* added to the environment. *tick* is called every *tick_every* seconds
        while it runs (an agent heartbeats there); *echo* receives each output line as it comes."""
        bad = [k for k, v in (env or {}).items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            from gitflows.errors import WrongTypeError

            raise WrongTypeError(f"run(env): environment variables are str -> str; bad entries: {bad!r}")
        with tempfile.TemporaryDirectory(prefix="gitflows-run-") as tmp:
            spec, result = os.path.join(tmp, "spec.json"), os.path.join(tmp, "result.json")
            with open(spec, "w", encoding="utf-8") as fh:
                json.dump({"storage": self.storage_data, "flow_name": self.flow_name,
                           "flow_location": self.flow_location, "parameters": self.parameters}, fh)
            child_env = dict(os.environ)
            child_env.update(env or {})
            proc = subprocess.Popen([sys.executable, "-m", "gitflows.child", spec, result], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env,
                                    start_new_session=True)
            tail = _Tail(self.max_log)
            reader = threading.Thread(target=self._read, args=(proc, tail, echo), daemon=True)
            reader.start()
            deadline = None if timeout is None else time.monotonic() + timeout
            timed_out = False
            try:
                while proc.poll() is None:
                    if deadline is not None and time.monotonic() > deadline:
                        timed_out = True
                        break
                    if tick is not None:
                        tick()
                    wait = tick_every if deadline is None else max(0.01, min(tick_every, deadline - time.monotonic()))
                    try:
                        proc.wait(wait)
                    except subprocess.TimeoutExpired:
                        pass
            finally:
                if proc.poll() is None or timed_out:
                    _kill_group(proc)
                proc.wait()
                # a detached grandchild may hold the pipe open: do not wait for it forever
                reader.join(2)
            logs = redact(tail.text())
            if timed_out:
                return RunResult("failed", f"timed out after {timeout:.0f}s", logs, proc.returncode)
            try:
                with open(result, encoding="utf-8") as fh:
                    outcome = json.load(fh)
            except (OSError, ValueError):
                return RunResult("failed", f"the run's process exited with code {proc.returncode} and no result",
                                 logs, proc.returncode)
            error = outcome.get("error")
            return RunResult(str(outcome.get("state")), redact(error) if error else None, logs, proc.returncode,
                             dict(outcome.get("tasks") or {}))

    @staticmethod
    def _read(proc: subprocess.Popen[bytes], tail: _Tail, echo: Callable[[str], object] | None) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = redact(raw.decode("utf-8", "replace"))
            tail.add(line)
            if echo is not None:
                echo(line.rstrip("\n"))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
