"""Talking to a Docker daemon through docker-py's low-level ``APIClient``: the build context, and the streamed
output of build, pull and push (printed to stderr as it comes, every line redacted).

Imported only by the Docker storage: ``import gitflows`` never imports docker-py.
"""

from __future__ import annotations

import os
import posixpath
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from typing import IO, Any

from gitflows.errors import ConfigurationError, ImageTransferError, RemoteError
from gitflows.redact import redact

#: where the generated files (Dockerfile, flows, ``files``) sit in the context of a user Dockerfile's build
GENERATED = ".gitflows-build"


def api_client(base_url: str, tls_config: Any) -> Any:
    """``docker.APIClient(base_url, version="auto", tls=...)``; *tls_config* may be a bool, a ``TLSConfig``
    or the dict of ``TLSConfig`` arguments that ``serialize()`` writes."""
    try:
        import docker
        import docker.tls
    except ImportError:
        raise ConfigurationError("the Docker storage needs the docker library:"
                                 " pip install -e '.[docker]' in the gitflows checkout") \
            from None
    if isinstance(tls_config, dict):
        tls_config = docker.tls.TLSConfig(**tls_config)
    try:
        return docker.APIClient(base_url=base_url, version="auto", tls=tls_config or False)
    except docker.errors.DockerException as exc:  # version="auto" asks the daemon at once
        reason = redact(str(exc).split(": ", 1)[-1])[:200]
    raise RemoteError(f"no Docker daemon answers at {base_url} ({reason}); start Docker, point base_url (or "
                      "DOCKER_HOST) at a running daemon, or build without one: build(daemonless=True)")


def ignore_patterns(path: str | None) -> list[str]:
    """The patterns of a ``.dockerignore`` file (none when *path* is None or missing)."""
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh.read().splitlines() if line.strip() and not line.strip().startswith("#")]


def context_tar(generated: str, user_root: str | None, dockerignore: str | None) -> IO[bytes]:
    """The build context as a tar: the *generated* folder alone, or the user's folder (a user Dockerfile's
    build) with the generated folder under :data:`GENERATED`. *dockerignore* (or the context folder's own
    ``.dockerignore``) excludes files as ``docker build`` would; the Dockerfile is always included."""
    from docker.utils.build import exclude_paths

    out = tempfile.TemporaryFile()
    with tarfile.open(fileobj=out, mode="w") as tar:
        if user_root is not None:
            patterns = ignore_patterns(dockerignore or os.path.join(user_root, ".dockerignore"))
            for rel in sorted(exclude_paths(user_root, patterns, dockerfile=f"{GENERATED}/Dockerfile")):
                if rel == GENERATED or rel.startswith(GENERATED + "/"):
                    continue
                tar.add(os.path.join(user_root, rel), arcname=rel, recursive=False)
            generated_patterns: list[str] = []
        else:
            generated_patterns = ignore_patterns(os.path.join(generated, ".dockerignore"))
        for rel in sorted(exclude_paths(generated, generated_patterns)):
            arcname = posixpath.join(GENERATED, rel) if user_root is not None else rel
            tar.add(os.path.join(generated, rel), arcname=arcname, recursive=False)
    out.seek(0)
    return out


def say(prefix: str, line: str) -> None:
    print(f"[{prefix}] {redact(line)}", file=sys.stderr, flush=True)


def build_output(chunks: Iterable[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(output lines, error messages) of a build, printing each line as it comes."""
    seen: list[str] = []
    errors: list[str] = []
    for chunk in chunks:
        text = chunk.get("stream") or chunk.get("message") or ""
        for line in str(text).splitlines():
            if line.strip():
                seen.append(redact(line.rstrip()))
                say("docker build", seen[-1])
        if chunk.get("error") or chunk.get("errorDetail"):
            errors.append(redact((chunk.get("errorDetail") or {}).get("message") or chunk.get("error") or ""))
    return seen, errors


def transfer(start: Callable[[], Iterable[dict[str, Any]]], what: str) -> str | None:
    """Start a pull or push and follow its stream; the daemon refusing it, or an error line, raises
    :class:`ImageTransferError` (an InterruptedError) naming *what* was transferred. Returns the digest
    the daemon reported, if any."""
    import docker.errors

    digest = None
    try:
        for chunk in start():
            if chunk.get("error"):
                raise ImageTransferError(f"{what} failed: {chunk['error']}")
            if chunk.get("status") and not chunk.get("progress"):  # a step done, not every progress tick
                say("docker", " ".join(str(chunk[k]) for k in ("id", "status") if chunk.get(k)))
            digest = (chunk.get("aux") or {}).get("Digest") or digest
    except docker.errors.APIError as exc:
        failed = redact(f"{what} failed: {exc.explanation or exc}")
    else:
        return digest
    raise ImageTransferError(failed)  # outside the handler: the daemon's raw answer is not carried along
