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
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from gitflows.errors import WrongTypeError
from gitflows.outcome import MAX_LOG, RunResult
from gitflows.outcome import Tail as _Tail
from gitflows.redact import redact

LABEL = "io.gitflows.run-container"  # on every container a runner starts
SPEC = "/tmp/gitflows-spec.json"
RESULT = "/tmp/gitflows-result.json"


class DockerRunner:
    """Runs one flow of a Docker storage in a container; ``run(env)`` blocks until it ends."""

    def __init__(self, storage: Any, flow_location: str | None = None, flow_name: str | None = None,
                 parameters: Mapping[str, Any] | None = None, max_log: int = MAX_LOG,
                 network_mode: str | None = None) -> None:
        self.storage = storage
        self.flow_location = flow_location
        self.flow_name = flow_name
        self.parameters = dict(parameters or {})
        self.max_log = max_log
        self.network_mode = network_mode
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
        if "@" in image:
            storage.pull_image(image)
        spec = json.dumps({"storage": storage.serialize(), "flow_name": self.flow_name,
                           "flow_location": self.flow_location, "parameters": self.parameters}).encode()
        host_config = client.create_host_config(network_mode=self.network_mode) if self.network_mode else None
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
        finally:
            client.remove_container(container, force=True)
        if outcome is None:
            return RunResult("failed", f"the container of {image} exited with code {code} and no result", logs, code)
        error = outcome.get("error")
        return RunResult(str(outcome.get("state")), redact(error) if error else None, logs, code,
                         dict(outcome.get("tasks") or {}))


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
