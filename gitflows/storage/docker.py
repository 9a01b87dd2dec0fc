"""``Docker``: flows inside an image, built with a Docker daemon or without one, pinned by digest."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import uuid
from typing import Any

from gitflows.docker.healthcheck import check as healthcheck
from gitflows.docker.image import FLOWS_LABEL, dockerfile, push_daemonless, read_file
from gitflows.docker.registry import RegistryClient
from gitflows.envelope import flow_to_bytes_pickle
from gitflows.errors import ConfigurationError, GitflowsError, PathNotFoundError
from gitflows.flow import Flow
from gitflows.naming import slugify
from gitflows.redact import get_logger, redact
from gitflows.secrets import resolve_optional_secret, resolve_secret
from gitflows.storage.base import Storage

log = get_logger(__name__)


class Docker(Storage):
    """``Docker(registry_url=None, base_image=None, dockerfile=None, python_dependencies=None, image_name=None,
    image_tag=None, env_vars=None, files=None, gitflows_version=None, local_image=False,
    ignore_healthchecks=False, base_url=None, tls_config=False, build_kwargs=None,
    gitflows_directory="/opt/gitflows", path=None, stored_as_script=False, extra_dockerfile_commands=None,
    **kwargs)``.

    gitflows additions: ``registry_username_secret`` / ``registry_password_secret`` name the registry
    credentials; ``wheelhouse`` is a folder of wheels installed with ``--no-index`` (a build without a
    package index: gitflows and ``python_dependencies`` come from there).
    """

    type_name = "Docker"
    fields = ("registry_url", "base_image", "dockerfile", "python_dependencies", "image_name", "image_tag",
              "env_vars", "files", "gitflows_version", "local_image", "ignore_healthchecks", "base_url",
              "tls_config", "build_kwargs", "gitflows_directory", "path", "extra_dockerfile_commands",
              "registry_username_secret", "registry_password_secret", "wheelhouse")

    def __init__(self, registry_url: str | None = None, base_image: str | None = None, dockerfile: str | None = None,
                 python_dependencies: list[str] | None = None, image_name: str | None = None,
                 image_tag: str | None = None, env_vars: dict[str, str] | None = None,
                 files: dict[str, str] | None = None, gitflows_version: str | None = None, local_image: bool = False,
                 ignore_healthchecks: bool = False, base_url: str | None = None, tls_config: Any = False,
                 build_kwargs: dict[str, Any] | None = None, gitflows_directory: str = "/opt/gitflows",
                 path: str | None = None, stored_as_script: bool = False,
                 extra_dockerfile_commands: list[str] | None = None, registry_username_secret: str | None = None,
                 registry_password_secret: str | None = None, wheelhouse: str | None = None, **kwargs: Any) -> None:
        super().__init__(stored_as_script=stored_as_script, **kwargs)
        if base_image and dockerfile:
            raise ConfigurationError("Docker storage: give base_image or dockerfile, not both")
        if stored_as_script and not path:
            raise ConfigurationError("Docker storage: stored_as_script=True needs path= (where the script is in the image)")
        for image_path in (files or {}).values():
            if not str(image_path).startswith("/"):
                raise ConfigurationError(f"Docker storage: files must map to absolute image paths, got {image_path!r}")
        self.registry_url, self.base_image, self.dockerfile = registry_url, base_image, dockerfile
        self.python_dependencies = list(python_dependencies or [])
        self.image_name, self.image_tag = image_name, image_tag
        self.env_vars, self.files = dict(env_vars or {}), dict(files or {})
        self.gitflows_version, self.local_image = gitflows_version, local_image
        self.ignore_healthchecks, self.base_url, self.tls_config = ignore_healthchecks, base_url, tls_config
        self.build_kwargs = dict(build_kwargs or {})
        self.gitflows_directory, self.path = gitflows_directory.rstrip("/"), path
        self.extra_dockerfile_commands = list(extra_dockerfile_commands or [])
        self.registry_username_secret, self.registry_password_secret = registry_username_secret, registry_password_secret
        self.wheelhouse = wheelhouse
        self.image_digest: str | None = None
        self._scripts: dict[str, str] = {}

    # -- where flows live --------------------------------------------------------------------
    def _location_for(self, flow: Flow) -> str:
        if self.stored_as_script:
            assert self.path
            source = _script_of(flow)
            if source:
                self._scripts[flow.name] = source
            return self.path
        return f"{self.gitflows_directory}/flows/{slugify(flow.name)}.flow"

    def _contents(self) -> dict[str, bytes]:
        """Image path -> bytes of every flow and file that goes into the image."""
        out: dict[str, bytes] = {}
        for name, location in self.flows.items():
            if self.stored_as_script:
                source = self._scripts.get(name)
                if source and location not in self.files.values():
                    with open(source, "rb") as fh:
                        out[location] = fh.read()
            else:
                out[location] = flow_to_bytes_pickle(self._flows[name])
        for local, image_path in self.files.items():
            try:
                with open(os.path.expanduser(local), "rb") as fh:
                    out[image_path] = fh.read()
            except FileNotFoundError:
                raise PathNotFoundError(f"Docker storage: file {local} (for {image_path}) does not exist") from None
        return out

    def _spec(self) -> dict[str, Any]:
        return {"flows": dict(self.flows), "stored_as_script": self.stored_as_script,
                "python": ".".join(platform.python_version_tuple()[:2])}

    @property
    def name(self) -> str:
        if not self.image_name:
            self.image_name = f"gitflows-{uuid.uuid4().hex[:8]}"
        if not self.image_tag:
            self.image_tag = uuid.uuid4().hex[:12]
        repo = self.image_name
        return f"{_host(self.registry_url)}/{repo}" if self.registry_url else repo

    def _registry(self) -> RegistryClient:
        if not self.registry_url:
            raise ConfigurationError("Docker storage: registry_url is needed to push or pull")
        user = resolve_optional_secret(self.registry_username_secret)
        password = resolve_secret(self.registry_password_secret) if self.registry_password_secret else None
        return RegistryClient(self.registry_url, user, password)

    # -- building ----------------------------------------------------------------------------
    def build(self, push: bool = True, daemonless: bool = False) -> Docker:
        """Build the image (daemon, or ``daemonless=True``), run the healthchecks, push, record the digest."""
        self.run_basic_healthchecks()
        if daemonless:
            return self._build_daemonless()
        return self._build_with_daemon(push)

    def _build_daemonless(self) -> Docker:
        if not self.base_image:
            raise ConfigurationError("a daemonless build needs base_image (an image in a registry)")
        contents = self._contents()
        if not self.ignore_healthchecks:
            problems = healthcheck(self._spec(), read=lambda p: contents[p] if p in contents else _missing(p))
            if problems:
                raise GitflowsError("healthcheck failed:\n  " + "\n  ".join(problems))
        target = self._registry()
        base_host, base_repo, base_ref = _split_image(self.base_image)
        base = target if not base_host or _host(self.registry_url) == base_host else RegistryClient(base_host)
        self.name  # noqa: B018 - fills image_name and image_tag
        self.image_digest = push_daemonless(base, base_repo, base_ref, target, self.image_name or "", self.image_tag or "",
                                            contents, {FLOWS_LABEL: json.dumps(self.flows)}, self.env_vars)
        log.info("pushed %s:%s as %s", self.name, self.image_tag, self.image_digest)
        return self

    def _client(self) -> Any:
        try:
            import docker
        except ImportError:
            raise ConfigurationError("the Docker storage needs the docker library: pip install 'gitflows[docker]'") \
                from None
        return docker.APIClient(base_url=self.base_url or os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
                                tls=self.tls_config or False)

    def _build_with_daemon(self, push: bool) -> Docker:
        client = self._client()
        contents = self._contents()
        with tempfile.TemporaryDirectory(prefix="gitflows-docker-") as ctx:
            mapping: dict[str, str] = {}
            for i, (image_path, data) in enumerate(sorted(contents.items())):
                name = f"content/{i}-{os.path.basename(image_path)}"
                os.makedirs(os.path.join(ctx, "content"), exist_ok=True)
                with open(os.path.join(ctx, name), "wb") as fh:
                    fh.write(data)
                mapping[name] = image_path
            if self.wheelhouse:
                shutil.copytree(self.wheelhouse, os.path.join(ctx, "wheels"))
            if self.dockerfile:
                with open(self.dockerfile, encoding="utf-8") as fh:
                    text = fh.read() + "\n" + "\n".join(f"COPY {json.dumps([s, t])}" for s, t in mapping.items()) + "\n"
            else:
                text = dockerfile(self.base_image or f"python:{platform.python_version()}-slim", mapping,
                                  self.python_dependencies, self.env_vars,
                                  None if self.ignore_healthchecks else self._spec(), self.extra_dockerfile_commands,
                                  bool(self.wheelhouse), self.gitflows_version)
            with open(os.path.join(ctx, "Dockerfile"), "w", encoding="utf-8") as fh:
                fh.write(text)
            tag = f"{self.name}:{self.image_tag}"
            errors: list[str] = []
            seen: list[str] = []
            for chunk in client.build(path=ctx, tag=tag, rm=True, decode=True, **self.build_kwargs):
                if "stream" in chunk:
                    for line in chunk["stream"].splitlines():
                        if line.strip():
                            seen.append(redact(line.rstrip()))
                            print(f"[docker build] {seen[-1]}", file=sys.stderr, flush=True)
                if "error" in chunk:
                    errors.append(redact(chunk.get("errorDetail", {}).get("message") or chunk["error"]))
            if errors:
                # Docker's own error, with the lines that explain it (the healthcheck's, or the last ones)
                detail = [line for line in seen if line.startswith("healthcheck:") and "ok" not in line[-3:]] \
                    or seen[-10:]
                raise GitflowsError(f"docker build of {tag} failed:\n  " + "\n  ".join(detail + errors))
        if push and self.registry_url and not self.local_image:
            auth = None
            if self.registry_password_secret:
                auth = {"username": resolve_optional_secret(self.registry_username_secret) or "",
                        "password": resolve_secret(self.registry_password_secret)}
            for chunk in client.push(self.name, tag=self.image_tag, stream=True, decode=True, auth_config=auth):
                if "error" in chunk:
                    raise GitflowsError(f"docker push of {tag} failed: {redact(chunk['error'])}")
                digest = chunk.get("aux", {}).get("Digest")
                if digest:
                    self.image_digest = digest
        return self

    # -- loading -----------------------------------------------------------------------------
    def _load(self, name: str | None, location: str) -> Flow:
        """Inside the image: read the flow from its path. Elsewhere: fetch it from the registry by digest."""
        if os.path.exists(location):
            with open(location, "rb") as fh:
                data = fh.read()
        elif self.image_digest and self.registry_url:
            data = read_file(self._registry(), self.image_name or "", self.image_digest, location)
        else:
            raise PathNotFoundError(f"{location} is not on this machine and the image has no pushed digest")
        return self._from_bytes(data, name, location)

    def serialize(self) -> dict[str, Any]:
        data = super().serialize()
        data["image_digest"] = self.image_digest
        return data

    def restore(self, data: dict[str, Any]) -> None:
        self.image_digest = data.get("image_digest")


def _script_of(flow: Flow) -> str | None:
    from gitflows.storage.blob import _script_of as find

    return find(flow)


def _missing(path: str) -> bytes:
    raise FileNotFoundError(path)


def _host(url: str | None) -> str:
    return (url or "").split("://", 1)[-1].rstrip("/")


def _split_image(image: str) -> tuple[str | None, str, str]:
    """``host:port/repo:tag`` or ``repo@sha256:...`` -> (host or None, repo, tag or digest)."""
    host = None
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, image = first, rest
    if "@" in image:
        repo, ref = image.split("@", 1)
    elif ":" in image.rsplit("/", 1)[-1]:
        repo, ref = image.rsplit(":", 1)
    else:
        repo, ref = image, "latest"
    return host, repo, ref


