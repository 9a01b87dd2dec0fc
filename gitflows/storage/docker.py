"""``Docker``: flows inside an image, built with a Docker daemon or without one, pinned by digest."""

from __future__ import annotations

import datetime as _dt
import hmac
import json
import os
import re
import shutil
import sys
import tempfile
import uuid
import warnings
from pathlib import PurePosixPath
from typing import Any

from gitflows.docker.content import (
    checkout_wheel,
    copy_into,
    files_contents,
    from_an_index,
    gitflows_requirement,
    lookup,
)
from gitflows.docker.healthcheck import check as healthcheck
from gitflows.docker.image import FLOWS_LABEL, dockerfile, push_daemonless, read_file
from gitflows.docker.registry import RegistryClient, host_of, registry_root, split_image
from gitflows.envelope import check_recorded_digest, flow_to_bytes_pickle, restore_digests, sha256_of
from gitflows.errors import ConfigurationError, GitflowsError, ImageBuildError, PathNotFoundError
from gitflows.flow import Flow
from gitflows.naming import slugify
from gitflows.redact import get_logger
from gitflows.secrets import resolve_optional_secret, resolve_secret
from gitflows.storage.base import Storage
from gitflows.version import __version__

log = get_logger(__name__)

#: build_kwargs gitflows cannot take: it makes the build context itself
_CONTEXT_KWARGS = ("fileobj", "custom_context", "encoding", "gzip", "dockerfile")


class Docker(Storage):
    """``Docker(registry_url=None, base_image=None, dockerfile=None, dockerignore=None, python_dependencies=None,
    image_name=None, image_tag=None, env_vars=None, files=None, gitflows_version=None, local_image=False,
    ignore_healthchecks=False, base_url=None, tls_config=False, build_kwargs=None,
    gitflows_directory="/opt/gitflows", path=None, stored_as_script=False, extra_dockerfile_commands=None,
    **kwargs)`` — Prefect 1's arguments in Prefect 1's order; ``prefect_version`` and ``prefect_directory``
    are accepted as keyword aliases of ``gitflows_version`` and ``gitflows_directory``.

    gitflows additions: ``registry_username_secret`` / ``registry_password_secret`` name the registry
    credentials; ``wheelhouse`` is a folder of wheels installed with ``--no-index`` (a build without a
    package index: gitflows and ``python_dependencies`` come from there).
    """

    type_name = "Docker"
    fields = ("registry_url", "base_image", "dockerfile", "dockerignore", "python_dependencies", "image_name",
              "image_tag", "env_vars", "files", "gitflows_version", "local_image", "ignore_healthchecks", "base_url",
              "tls_config", "build_kwargs", "gitflows_directory", "path", "extra_dockerfile_commands",
              "registry_username_secret", "registry_password_secret", "wheelhouse")

    def __init__(self, registry_url: str | None = None, base_image: str | None = None, dockerfile: str | None = None,
                 dockerignore: str | None = None, python_dependencies: list[str] | None = None,
                 image_name: str | None = None, image_tag: str | None = None, env_vars: dict[str, Any] | None = None,
                 files: dict[str, str] | None = None, gitflows_version: str | None = None, local_image: bool = False,
                 ignore_healthchecks: bool = False, base_url: str | None = None, tls_config: Any = False,
                 build_kwargs: dict[str, Any] | None = None, gitflows_directory: str | None = None,
                 path: str | None = None, stored_as_script: bool = False,
                 extra_dockerfile_commands: list[str] | None = None, registry_username_secret: str | None = None,
                 registry_password_secret: str | None = None, wheelhouse: str | None = None,
                 prefect_version: str | None = None, prefect_directory: str | None = None, **kwargs: Any) -> None:
        super().__init__(stored_as_script=stored_as_script, **kwargs)
        gitflows_version = _alias("gitflows_version", gitflows_version, "prefect_version", prefect_version)
        gitflows_directory = _alias("gitflows_directory", gitflows_directory, "prefect_directory", prefect_directory)
        if base_image and dockerfile:
            raise ConfigurationError("Docker storage: only one of `base_image` and `dockerfile` can be provided "
                                     f"(got base_image={base_image!r} and dockerfile={dockerfile!r}); give one")
        if stored_as_script and not path:
            raise ConfigurationError("Docker storage: stored_as_script=True needs path= (where the script is in the "
                                     "image; copy it there with files={'/abs/path/flow.py': path})")
        not_absolute = [src for src in (files or {}) if not os.path.isabs(src)]
        if not_absolute:
            raise ConfigurationError(
                f"Provided paths {', '.join(not_absolute)} are not absolute file paths, please provide absolute paths "
                "only: Docker storage files= maps absolute paths on this machine to paths in the image "
                "(e.g. os.path.abspath('config.yaml'))")
        bad = [k for k in _CONTEXT_KWARGS if k in (build_kwargs or {})]
        if bad:
            raise ConfigurationError(f"Docker storage: build_kwargs {', '.join(bad)} cannot be given: gitflows makes "
                                     "the build context itself (use dockerfile= for your own Dockerfile, and "
                                     "build_kwargs path= for its context folder)")
        self.registry_url = registry_url
        self.dockerfile, self.dockerignore = dockerfile, dockerignore
        self.python_dependencies = list(python_dependencies or [])
        self.image_name, self.image_tag = image_name, image_tag
        self.env_vars, self.files = dict(env_vars or {}), dict(files or {})
        self.gitflows_version = gitflows_version or _release(__version__)
        gitflows_requirement(self.gitflows_version)  # a bad version fails here, not at build time
        self.local_image, self.ignore_healthchecks = local_image, ignore_healthchecks
        self.base_url = base_url or os.environ.get("DOCKER_HOST") or _default_docker_url()
        self.tls_config = tls_config
        self.build_kwargs = dict(build_kwargs or {})
        self.gitflows_directory = (gitflows_directory or "/opt/gitflows").rstrip("/") or "/"
        self.path = path
        self.extra_dockerfile_commands = list(extra_dockerfile_commands or [])
        self.registry_username_secret, self.registry_password_secret = registry_username_secret, registry_password_secret
        self.wheelhouse = wheelhouse
        # as Prefect 1: with neither, an image of this interpreter's Python version
        self.base_image = base_image if base_image or dockerfile else f"python:{_python()}-slim"
        self.image_digest: str | None = None
        self.digests: dict[str, str] = {}  # flow name -> sha256 of its file as built into the image

    # -- Prefect 1 names ---------------------------------------------------------------------
    @property
    def prefect_version(self) -> str | None:
        """Prefect 1's name for :attr:`gitflows_version`."""
        return self.gitflows_version

    @property
    def prefect_directory(self) -> str:
        """Prefect 1's name for :attr:`gitflows_directory`."""
        return self.gitflows_directory

    # -- where flows live --------------------------------------------------------------------
    def _location_for(self, flow: Flow) -> str:
        if self.path and not self.stored_as_script and self.flows:
            raise ConfigurationError(f"Docker storage: path={self.path!r} holds one pickled flow, "
                                     f"{next(iter(self.flows))!r}; flow {flow.name!r} needs a storage of its own")
        return self.path or f"{self.gitflows_directory}/flows/{slugify(flow.name)}.flow"

    @property
    def name(self) -> str:
        """The image's full name, ``registry_url/image_name:image_tag`` (set by ``build()``)."""
        if not self.image_name or not self.image_tag:
            raise ConfigurationError("Docker storage is missing required fields image_name and image_tag "
                                     "(give them, or call build(), which names the image)")
        return f"{self.repository}:{self.image_tag}"

    @property
    def repository(self) -> str:
        """``registry_url/image_name`` (the registry without its scheme), or ``image_name``."""
        return str(PurePosixPath(host_of(self.registry_url), self.image_name or ""))

    def _spec(self) -> dict[str, Any]:
        return {"flows": dict(self.flows), "stored_as_script": self.stored_as_script, "python": _python()}

    # -- the Dockerfile and the build context --------------------------------------------------
    def create_dockerfile_object(self, directory: str) -> str:
        """Write the Dockerfile, the pickled flows and the ``files`` into *directory*; return the Dockerfile's path.

        Without ``dockerfile=``, *directory* is the whole build context. With it, the build context is that
        Dockerfile's folder (or ``build_kwargs["path"]``) and *directory* is added to it as ``.gitflows-build``.
        """
        from gitflows.docker.daemon import GENERATED

        self._warn_python_mismatch()
        if self.stored_as_script and not self.path:
            raise ConfigurationError("A `path` must be provided to show where flow `.py` file is stored in the image.")
        prefix = f"{GENERATED}/" if self.dockerfile else ""
        if self.dockerfile:
            with open(self.dockerfile, encoding="utf-8") as fh:
                base = fh.read()
        else:
            base = f"FROM {self.base_image}"
        copies: list[tuple[str, str]] = []
        if not self.stored_as_script:
            for name, location in self.flows.items():
                file_name = f"{slugify(name)}.flow"
                with open(os.path.join(directory, file_name), "wb") as fh:
                    fh.write(self._pickle(name))
                copies.append((prefix + file_name, location))
        if self.dockerignore:
            shutil.copyfile(os.path.expanduser(self.dockerignore), os.path.join(directory, ".dockerignore"))
        for src, dest in self.files.items():
            copies.append((prefix + copy_into(src, directory), dest))
        wheels = own_wheel = None
        requirement = gitflows_requirement(self.gitflows_version)
        if self.wheelhouse:
            shutil.copytree(self.wheelhouse, os.path.join(directory, "wheels"), dirs_exist_ok=True)
            wheels = prefix + "wheels"
        elif from_an_index(requirement):
            if self.gitflows_version and self.gitflows_version != __version__:
                raise ConfigurationError(
                    f"Docker storage: gitflows_version={self.gitflows_version!r} is not the gitflows running here "
                    f"({__version__}) and no package index holds gitflows; give wheelhouse= (a folder holding that "
                    "version's wheel) or gitflows_version= as a wheel's path or URL")
            own_wheel = prefix + "gitflows-wheel/" + checkout_wheel(os.path.join(directory, "gitflows-wheel"))
        text = dockerfile(base, self.env_vars, self.python_dependencies, wheels, requirement, copies,
                          self.extra_dockerfile_commands, None if self.ignore_healthchecks else self._spec(),
                          gitflows_wheel=own_wheel)
        path = os.path.join(directory, "Dockerfile")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path

    def _warn_python_mismatch(self) -> None:
        found = re.search(r"(?:^|/)python:(\d+\.\d+)", self.base_image or "")
        if found and found.group(1) != _python():
            warnings.warn(f"Docker storage: base image {self.base_image} runs Python {found.group(1)}, but the flows "
                          f"are built with Python {_python()}; this could lead to unexpected errors in deployment "
                          f"(use base_image='python:{_python()}-slim')", UserWarning, stacklevel=3)

    # -- talking to the daemon -----------------------------------------------------------------
    def create_docker_client(self) -> Any:
        """A ``docker.APIClient`` for ``base_url`` and ``tls_config`` (API version negotiated)."""
        from gitflows.docker.daemon import api_client

        return api_client(self.base_url, self.tls_config)

    _get_client = create_docker_client  # Prefect 1.4.1's name

    def pull_image(self, image: str | None = None) -> None:
        """Pull ``base_image`` (or *image*). Raises :class:`~gitflows.errors.ImageTransferError`, an
        ``InterruptedError``, with Docker's error."""
        from gitflows.docker.daemon import transfer

        image = image or self.base_image
        if not image:
            raise ConfigurationError("Docker storage: pull_image() needs base_image (or an image to pull)")
        client = self.create_docker_client()
        transfer(lambda: client.pull(image, stream=True, decode=True, auth_config=self._auth()),
                 f"Docker storage: pulling {image}")

    def push_image(self, image_name: str, image_tag: str) -> None:
        """Push *image_name*:*image_tag* (with the registry credentials, if named); records ``image_digest``.
        Raises :class:`~gitflows.errors.ImageTransferError`, an ``InterruptedError``, with Docker's error."""
        from gitflows.docker.daemon import transfer

        self.logger.info("Pushing image to the registry...")
        client = self.create_docker_client()
        digest = transfer(lambda: client.push(image_name, tag=image_tag, stream=True, decode=True,
                                              auth_config=self._auth()),
                          f"Docker storage: pushing {image_name}:{image_tag}")
        if digest:
            self.image_digest = digest
            log.info("pushed %s:%s as %s", image_name, image_tag, digest)

    def _auth(self) -> dict[str, str] | None:
        if not self.registry_password_secret:
            return None
        return {"username": resolve_optional_secret(self.registry_username_secret) or "",
                "password": resolve_secret(self.registry_password_secret)}

    # -- building ----------------------------------------------------------------------------
    def build(self, push: bool = True, daemonless: bool = False, check_in_image: bool = False) -> Docker:
        """Name the image (if not named), build it (with the daemon, or ``daemonless=True``), run the
        healthchecks, push it when there is a ``registry_url``, record the digest. Returns the storage.

        A daemonless build checks its flows with this interpreter; *check_in_image* (daemonless only) runs
        the check again inside the pushed image, through a Docker daemon (``base_url``, ``DOCKER_HOST``),
        so a module the image lacks fails the build before the digest is recorded."""
        self.run_basic_healthchecks()
        if not self.image_name:
            self.image_name = slugify(next(iter(self.flows))) if len(self.flows) == 1 else str(uuid.uuid4())
        if not self.image_tag:
            self.image_tag = slugify(_dt.datetime.now(_dt.UTC).isoformat())
        if check_in_image and not daemonless:
            raise ConfigurationError("Docker storage: check_in_image is for daemonless builds (a daemon build already "
                                     "runs the healthcheck inside the image)")
        if daemonless:
            self._build_daemonless(check_in_image)
        else:
            self.build_image(push=push)
        return self

    def build_image(self, push: bool = True) -> tuple[str, str]:
        """Build the image with the daemon; push it when *push* and ``registry_url``. Returns (image_name, image_tag).

        Raises :class:`~gitflows.errors.ImageBuildError` (a ``ValueError``) when the build fails, with the
        healthcheck's lines and Docker's error; :class:`~gitflows.errors.ImageTransferError` (an
        ``InterruptedError``) when pulling the base image or pushing fails."""
        from gitflows.docker.daemon import build_output, context_tar

        tag = self.name
        kwargs = dict(self.build_kwargs)
        rm, extra_tag, context = kwargs.pop("rm", True), kwargs.pop("tag", None), kwargs.pop("path", None)
        kwargs.pop("decode", None)
        labels = {FLOWS_LABEL: json.dumps(self.flows), **(kwargs.pop("labels", None) or {})}
        if push and not self.registry_url:
            warnings.warn("This Docker storage object has no `registry_url`, and will not be pushed.", UserWarning,
                          stacklevel=2)
        if self.base_image and not self.local_image:
            self.pull_image()
        client = self.create_docker_client()
        with tempfile.TemporaryDirectory(prefix="gitflows-docker-") as tmp:
            dockerfile_path = self.create_dockerfile_object(directory=tmp)
            root = (context or os.path.dirname(os.path.abspath(self.dockerfile))) if self.dockerfile else None
            with context_tar(tmp, root, self.dockerignore) as ctx:
                self.logger.info("Building the flow's Docker storage...")
                seen, errors = build_output(client.build(
                    fileobj=ctx, custom_context=True, tag=tag, rm=rm, decode=True, labels=labels,
                    dockerfile=os.path.relpath(dockerfile_path, tmp) if root is None else
                    f".gitflows-build/{os.path.basename(dockerfile_path)}", **kwargs))
        for line in seen:
            if line.startswith("healthcheck: warning: "):
                warnings.warn(f"Docker storage: {line[len('healthcheck: warning: '):]}", UserWarning, stacklevel=2)
        if errors or not client.images(name=tag):
            detail = [line for line in seen if line.startswith("healthcheck:") and not line.endswith(": ok")] \
                or seen[-10:]
            raise ImageBuildError(f"Docker storage: your docker image {tag} failed to build:\n  "
                                  + "\n  ".join(detail + errors) + "\nCheck that every file and dependency the flows "
                                  "need is in the image (files=, python_dependencies=).")
        if extra_tag:
            repo, _, extra = str(extra_tag).rpartition(":") if ":" in str(extra_tag).rsplit("/", 1)[-1] \
                else (str(extra_tag), "", "latest")
            client.tag(tag, repo, extra)
        if push and self.registry_url:
            self.push_image(self.repository, self.image_tag or "")
            client.remove_image(image=tag, force=True)
        return self.image_name or "", self.image_tag or ""

    _build_image = build_image  # Prefect 1.4.1's name

    def _contents(self) -> dict[str, bytes]:
        """Image path -> bytes of every flow and file that goes into the image (a daemonless build)."""
        out: dict[str, bytes] = {}
        if not self.stored_as_script:
            for name, location in self.flows.items():
                out[location] = self._pickle(name)
        out.update(files_contents(self.files))
        for name, location in self.flows.items():
            if location in out:  # a script copied in with files=: its bytes are known here too
                self.digests[name] = sha256_of(out[location])
        return out

    def _pickle(self, name: str) -> bytes:
        """The flow's pickle as it goes into the image; its sha256 is recorded (``get_flow`` checks it)."""
        data = flow_to_bytes_pickle(self._flows[name])
        self.digests[name] = sha256_of(data)
        return data

    def _registry(self) -> RegistryClient:
        if not self.registry_url:
            raise ConfigurationError("Docker storage: registry_url is needed to push or pull")
        user = resolve_optional_secret(self.registry_username_secret)
        password = resolve_secret(self.registry_password_secret) if self.registry_password_secret else None
        return RegistryClient(registry_root(self.registry_url), user, password)

    def _registry_repo(self) -> str:
        """The repository's path inside the registry (``registry_url``'s path, then ``image_name``)."""
        return str(PurePosixPath(host_of(self.registry_url).partition("/")[2] or ".", self.image_name or ""))

    def _build_daemonless(self, check_in_image: bool = False) -> None:
        if not self.base_image or self.dockerfile:
            raise ConfigurationError("Docker storage: a daemonless build needs base_image (an image in a registry), "
                                     "not a dockerfile")
        self._warn_python_mismatch()
        contents = self._contents()
        if not self.ignore_healthchecks:
            problems = healthcheck(self._spec(), read=lambda p: lookup(contents, p))
            if problems:
                raise ImageBuildError(f"Docker storage: your docker image {self.name} failed to build: "
                                      "healthcheck failed:\n  " + "\n  ".join(problems))
        target = self._registry()
        base_host, base_repo, base_ref = split_image(self.base_image)
        root = registry_root(self.registry_url or "")
        base = target if not base_host or host_of(root) == base_host else RegistryClient(base_host)
        digest = push_daemonless(base, base_repo, base_ref, target, self._registry_repo(),
                                 self.image_tag or "", contents, {FLOWS_LABEL: json.dumps(self.flows)},
                                 {k: str(v) for k, v in self.env_vars.items()})
        log.info("pushed %s as %s", self.name, digest)
        if check_in_image and not self.ignore_healthchecks:
            self._check_in_image(f"{self.repository}@{digest}")
        self.image_digest = digest

    def _check_in_image(self, image: str) -> None:
        """The healthcheck inside *image* (pulled by digest through the daemon); an ImageBuildError naming the
        flow and the problem when it fails, a ConfigurationError when no daemon can run it."""
        from gitflows.docker.runner import healthcheck_in

        try:
            self.pull_image(image)
            client = self.create_docker_client()
        except GitflowsError as exc:
            raise ConfigurationError(f"Docker storage: check_in_image needs a Docker daemon that can pull {image} "
                                     f"(base_url or DOCKER_HOST): {exc}") from None
        code, lines = healthcheck_in(client, image, self._spec())
        for line in lines:
            if line.startswith("healthcheck: warning: "):
                warnings.warn(f"Docker storage: {line[len('healthcheck: warning: '):]}", UserWarning, stacklevel=4)
        if code != 0:
            problems = [line for line in lines if line.startswith("healthcheck:") and not line.endswith(": ok")
                        and not line.startswith("healthcheck: warning: ")]
            raise ImageBuildError(f"Docker storage: your docker image {self.name} failed to build: healthcheck in "
                                  f"the image failed (pushed as {image}, not recorded):\n  " + "\n  ".join(problems))

    # -- loading and running ---------------------------------------------------------------------
    def _load(self, name: str | None, location: str) -> Flow:
        """The file at the flow's location when it holds the bytes recorded at build (inside the image, it
        does); otherwise, with a pushed digest, the file read from the image in the registry, by digest,
        verified. A different file at that path on this machine (a stale one) never wins."""
        expected = self.digests.get(name) if name else None
        local = _read_if_present(location)
        if local is not None and (expected is None or hmac.compare_digest(sha256_of(local), expected)):
            data = local
        elif self.image_digest and self.registry_url:
            if local is not None:
                log.warning("%s on this machine is not the file built into %s; reading it from the image by digest",
                            location, self.name)
            data = read_file(self._registry(), self._registry_repo(), self.image_digest, location)
            check_recorded_digest(data, expected, f"Docker storage: flow {name!r} at {location} in {self.image_digest}")
        elif local is not None:  # a different file and no image to read instead: refused here
            check_recorded_digest(local, expected, f"Docker storage: flow {name!r} at {location} (no pushed image)")
            data = local
        else:
            raise PathNotFoundError(
                f"Docker storage: flow {name or '?'} at {location} is not on this machine, and the image has no "
                "pushed digest to read it from; run it inside the image (get_env_runner(location).run(env)) or "
                "build(push=True) with a registry_url")
        return self._from_bytes(data, name, location)

    def get_env_runner(self, flow_location: str, parameters: dict[str, Any] | None = None) -> Any:
        """A runner for the flow at *flow_location*: ``runner.run(env)`` runs it in a container of this image
        (pulled by digest once pushed) with the environment variables *env*, and returns a ``RunResult``."""
        from gitflows.docker.runner import DockerRunner

        name, location = self._locate(flow_location)
        return DockerRunner(self, location, name, parameters)

    def serialize(self) -> dict[str, Any]:
        data = super().serialize()
        data["image_digest"] = self.image_digest
        data["digests"] = dict(self.digests)
        if self.tls_config is not None and not isinstance(self.tls_config, bool | dict):
            data["tls_config"] = _tls_fields(self.tls_config)
        return data

    def restore(self, data: dict[str, Any]) -> None:
        self.image_digest = data.get("image_digest")
        self.digests = restore_digests(data, self.type_name)


def _alias(name: str, value: Any, prefect_name: str, prefect_value: Any) -> Any:
    if prefect_value is not None and value is not None and prefect_value != value:
        raise ConfigurationError(f"Docker storage: {name}={value!r} and {prefect_name}={prefect_value!r} name the "
                                 f"same setting; give one")
    return value if value is not None else prefect_value


def _python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _release(version: str) -> str | None:
    """This gitflows version when it is a release (pinned in the image), else None (the newest is installed)."""
    return version if re.fullmatch(r"\d+\.\d+\.\d+", version) else None


def _default_docker_url() -> str:
    return "npipe:////./pipe/docker_engine" if sys.platform == "win32" else "unix://var/run/docker.sock"


def _tls_fields(tls: Any) -> dict[str, Any]:
    """A ``docker.tls.TLSConfig`` as the arguments that rebuild it (certificate paths, never key contents)."""
    cert = getattr(tls, "cert", None)
    return {"client_cert": list(cert) if isinstance(cert, tuple) else cert, "ca_cert": getattr(tls, "ca_cert", None),
            "verify": getattr(tls, "verify", None)}


def _read_if_present(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
