"""The Docker storage's env runner: ``Docker.get_env_runner(location).run(env)`` runs the flow in a container
of the storage's image, with *env* as the container's environment variables.

The container runs ``python -m gitflows.child`` (the same loader an agent's child process uses) on a spec
copied into it before it starts; the flow is read from the image itself, and its output is streamed back
as it comes, into a bounded tail. A pushed image is run by digest
(pulled first), so the run uses exactly the image that was built; an image that was not pushed is run by
its local ``name``. The container is removed afterwards, whatever happened.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gitflows.errors import ConfigurationError, WrongTypeError
from gitflows.outcome import MAX_LOG, RunResult
from gitflows.outcome import Tail as _Tail
from gitflows.redact import redact

LABEL = "io.gitflows.run-container"  # on every container a runner starts
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
MIN_MEMORY = 6 * 1024 ** 2  # Docker refuses less


@dataclass(frozen=True)
class Limits:
    """Resource limits of a run's container (None: unlimited). *memory* in bytes or ``"512m"``-style text
    (b, k, m, g: powers of 1024), also the limit with swap (no swapping past it); *cpus* as a fraction of
    the machine's CPUs (``1.5``); *pids* the most processes the flow may start."""

    memory: int | str | None = None
    cpus: float | None = None
    pids: int | None = None

    def host_config(self) -> dict[str, Any]:
        """The daemon API's HostConfig fields; a ConfigurationError naming the bad value and the form expected."""
        config: dict[str, Any] = {}
        if self.memory is not None:
            memory = parse_memory(self.memory)
            config.update(mem_limit=memory, memswap_limit=memory)
        if self.cpus is not None:
            if not isinstance(self.cpus, int | float) or isinstance(self.cpus, bool) or not 0 < self.cpus <= 1024:
                raise ConfigurationError(f"container cpus {self.cpus!r}: expected a number of CPUs above 0, e.g. 1.5")
            config["nano_cpus"] = int(self.cpus * 1e9)
        if self.pids is not None:
            if not isinstance(self.pids, int) or isinstance(self.pids, bool) or self.pids < 1:
                raise ConfigurationError(f"container pids {self.pids!r}: expected a whole number of processes, >= 1")
            config["pids_limit"] = self.pids
        return config

    def describe(self) -> str:
        parts = [f"memory {_human(parse_memory(self.memory))}" if self.memory is not None else "",
                 f"{self.cpus:g} CPUs" if self.cpus is not None else "",
                 f"{self.pids} processes" if self.pids is not None else ""]
        return ", ".join(p for p in parts if p) or "no limits"


def parse_memory(value: int | str) -> int:
    """Bytes from ``512m``, ``1g``, ``1.5g``, ``65536`` (b/k/m/g are powers of 1024); at least 6 MiB."""
    text = str(value).strip().lower().removesuffix("ib").removesuffix("b") if isinstance(value, str) else value
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg]?)", str(text)) if not isinstance(value, bool) else None
    if match is None:
        raise ConfigurationError(f"container memory {value!r}: expected bytes or a size such as 512m or 2g")
    size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size < MIN_MEMORY:
        raise ConfigurationError(f"container memory {value!r}: Docker needs at least 6m")
    return size


def _human(size: int) -> str:
    for unit, factor in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"
SPEC = "/tmp/gitflows-spec.json"
RESULT = "/tmp/gitflows-result.json"


class DockerRunner:
    """Runs one flow of a Docker storage in a container; ``run(env)`` blocks until it ends."""

    def __init__(self, storage: Any, flow_location: str | None = None, flow_name: str | None = None,
                 parameters: Mapping[str, Any] | None = None, max_log: int = MAX_LOG,
                 network_mode: str | None = None, limits: Limits | None = None) -> None:
        self.storage = storage
        self.flow_location = flow_location
        self.flow_name = flow_name
        self.parameters = dict(parameters or {})
        self.max_log = max_log
        self.network_mode = network_mode
        #: resource limits of the container (an agent sets them from --container-memory/-cpus/-pids)
        self.limits = limits or Limits()
        #: labels on the container (an agent names the run: io.gitflows.run, io.gitflows.flow)
        self.labels: dict[str, str] = {"io.gitflows.flow": str(flow_name or flow_location or "")}

    def __repr__(self) -> str:
        return f"DockerRunner({self.image}, location={self.flow_location!r}, flow={self.flow_name!r})"

    @property
    def image(self) -> str:
        """The image the flow runs in: ``registry/name@sha256:...`` once pushed, else ``name:tag``."""
        storage = self.storage
        if storage.image_digest and storage.registry_url:
            return f"{storage.repository}@{storage.image_digest}"
        return str(storage.name)

    def run(self, env: Mapping[str, str] | None = None, *, timeout: float | None = None,
            tick: Callable[[], bool | None] | None = None, tick_every: float = 5.0,
            keepalive: float | None = None, echo: Callable[[str], object] | None = None) -> RunResult:
        """Run the flow in a container with *env* as its environment. *tick* is called every *tick_every*
        seconds while it runs; when it returns False (the run is no longer this agent's) the container is
        killed at once. *keepalive* is accepted for the agent's sake: a container is not a child process of
        the agent, so it does not end itself when the agent stalls (docs/docker.md). *echo* receives each
        output line as the container writes it."""
        bad = [k for k, v in (env or {}).items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise WrongTypeError(f"run(env): environment variables are str -> str; bad entries: {bad!r}")
        storage = self.storage
        client = storage.create_docker_client()
        image = self.image
        spec = json.dumps({"storage": storage.serialize(), "flow_name": self.flow_name,
                           "flow_location": self.flow_location, "parameters": self.parameters}).encode()
        limits = self.limits.host_config()  # bad values fail here, before anything is pulled or created
        if "@" in image:
            storage.pull_image(image)
        options = {**limits, **({"network_mode": self.network_mode} if self.network_mode else {})}
        host_config = client.create_host_config(**options) if options else None
        _remove_leftovers(client)
        container = client.create_container(image, command=["python", "-m", "gitflows.child", SPEC, RESULT],
                                            environment={**_secrets_of(storage), **dict(env or {})},
                                            host_config=host_config,
                                            labels={LABEL: "1", **self.labels})
        try:
            client.put_archive(container, "/tmp", _tar_of("gitflows-spec.json", spec))
            client.start(container)
            tail = _Tail(self.max_log)
            streamer = threading.Thread(target=_stream_logs, args=(client, container, tail, echo), daemon=True,
                                        name="gitflows-container-logs")
            streamer.start()
            deadline = None if timeout is None else time.monotonic() + timeout
            status: dict[str, Any] | None = None
            lost = False
            while status is None:
                if deadline is not None and time.monotonic() > deadline:
                    _kill(client, container)
                    break
                if tick is not None and tick() is False:
                    _kill(client, container)
                    lost = True
                    break
                wait = tick_every if deadline is None else max(0.01, min(tick_every, deadline - time.monotonic()))
                try:
                    status = client.wait(container, timeout=wait)
                except Exception as exc:  # noqa: BLE001 - docker-py raises requests' timeout types
                    if "timed out" not in str(exc).lower() and "timeout" not in type(exc).__name__.lower():
                        raise
            streamer.join(10)  # the stream ends with the container
            logs = redact(tail.text())
            if lost:
                return RunResult("failed", "stopped: the run is no longer this agent's (its lease was taken over)",
                                 logs, lost=True)
            if status is None:
                return RunResult("failed", f"timed out after {timeout:g}s; container of {image} killed", logs)
            code = int(status.get("StatusCode", -1))
            outcome = _result(client, container)
            if outcome is None and _out_of_memory(client, container):
                return RunResult("failed", f"the container of {image} was killed: out of memory (limits: "
                                 f"{self.limits.describe()}); raise the agent's --container-memory or make the flow "
                                 "use less", logs, code)
        finally:
            client.remove_container(container, force=True)
        if outcome is None:
            return RunResult("failed", f"the container of {image} exited with code {code} and no result", logs, code)
        error = outcome.get("error")
        return RunResult(str(outcome.get("state")), redact(error) if error else None, logs, code,
                         dict(outcome.get("tasks") or {}))


def healthcheck_in(client: Any, image: str, spec: Mapping[str, Any], timeout: float = 300) -> tuple[int, list[str]]:
    """Run ``python -m gitflows.docker.healthcheck`` in a container of *image* (already on the daemon), without
    network: (exit code, output lines). An image the check cannot even start in (no ``python`` on its PATH, no
    gitflows) is a non-zero code with a line saying so. The container is removed whatever happened."""
    import docker.errors

    command = ["python", "-m", "gitflows.docker.healthcheck", json.dumps(dict(spec))]
    try:
        container = client.create_container(image, command=command, labels={LABEL: "1"},
                                            host_config=client.create_host_config(network_mode="none"))
    except docker.errors.APIError as exc:
        return 125, [f"healthcheck: cannot create a container of {image}: {redact(str(exc))}"]
    try:
        try:
            client.start(container)
        except docker.errors.APIError as exc:  # e.g. "exec: python: executable file not found in $PATH"
            return 127, [f"healthcheck: cannot start python in {image} (base_image needs Python and gitflows "
                         f"installed, as every run in the image does): {redact(str(exc))}"]
        try:
            code = int(client.wait(container, timeout=timeout).get("StatusCode", -1))
        except Exception:  # noqa: BLE001 - docker-py raises requests' timeout types
            _kill(client, container)
            return 124, [f"healthcheck: did not finish within {timeout:g}s in {image}"]
        lines = redact(client.logs(container).decode("utf-8", "replace")).splitlines()
        if code != 0 and not any(line.startswith("healthcheck:") for line in lines):
            lines.append(f"healthcheck: exited with code {code} in {image} (is gitflows installed in base_image?)")
        return code, lines
    finally:
        client.remove_container(container, force=True)


def _out_of_memory(client: Any, container: Any) -> bool:
    """Whether the kernel killed the container's process for passing its memory limit."""
    try:
        return bool(client.inspect_container(container).get("State", {}).get("OOMKilled"))
    except Exception:  # noqa: BLE001 - the daemon cannot say: the exit code and logs still tell
        return False


def _stream_logs(client: Any, container: Any, tail: _Tail, echo: Callable[[str], object] | None) -> None:
    """The container's output as it comes, line by line, redacted, into a bounded tail (and *echo*)."""
    pending = b""
    try:
        for chunk in client.logs(container, stream=True, follow=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = redact(raw.decode("utf-8", "replace"))
                tail.add(line + "\n")
                if echo is not None:
                    echo(line)
    except Exception:  # noqa: BLE001 - the daemon closing the stream early: what came is kept
        pass
    if pending:
        tail.add(redact(pending.decode("utf-8", "replace")))


def _secrets_of(storage: Any) -> dict[str, str]:
    """The storage's ``secrets``, resolved here (the container has no access to this machine's secret
    sources), for the container's environment: the flow finds them in ``gitflows.context.secrets``."""
    from gitflows.secrets import resolve_optional_secret

    found = {}
    for name in getattr(storage, "secrets", None) or []:
        value = resolve_optional_secret(name)
        if value is not None:
            found[name] = value
    return found


def _remove_leftovers(client: Any) -> None:
    """Remove the exited run containers a killed agent could not remove: none is left behind for long,
    whatever happened to the agent that started it (a running one is left alone: it is someone's run)."""
    import docker.errors

    for leftover in client.containers(all=True, filters={"label": LABEL, "status": "exited"}):
        try:
            client.remove_container(leftover["Id"])
        except docker.errors.APIError:  # removed meanwhile by its own runner
            pass


def _kill(client: Any, container: Any) -> None:
    import docker.errors

    try:
        client.kill(container)
    except docker.errors.APIError:  # it ended meanwhile
        pass


def _tar_of(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _result(client: Any, container: Any) -> dict[str, Any] | None:
    """The child's RESULT file, read out of the stopped container (None when it wrote none)."""
    import docker.errors

    try:
        stream, _ = client.get_archive(container, RESULT)
    except docker.errors.NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile(tar.getmembers()[0])
        if member is None:
            return None
        try:
            result: dict[str, Any] = json.loads(member.read())
        except ValueError:
            return None
        return result
