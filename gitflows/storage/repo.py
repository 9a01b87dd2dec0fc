"""What the repository storages (GitHub, GitLab, Bitbucket, CodeCommit, Git) share.

A repository storage is thin: its constructor arguments plus a :class:`~gitflows.hosts.Host`.
It always stores the script itself (``stored_as_script`` is true); a flow's location is the
script's path in the repository.

``build()`` resolves the ref once and pins the commit: ``serialize()`` then records
``sha`` (the full commit SHA) and ``closure`` (every file the flow needs with its git blob
id). ``get_flow`` loads at the pinned SHA — never asking the host what a branch points to —
and verifies every file against the recorded blob ids. Before ``build()``, ``get_flow``
resolves ``ref`` (or the default branch) once per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from gitflows.cache import Cache
from gitflows.errors import ConfigurationError
from gitflows.flow import Flow
from gitflows.hosts import Host
from gitflows.imports import safe_relpath
from gitflows.loader import Closure, is_full_sha, load, resolve
from gitflows.secrets import resolve_optional_secret, resolve_secret
from gitflows.storage.base import Storage


def token_getter(explicit: str | None, default: str | None) -> Callable[[], str | None]:
    """A callable that resolves the token only when a request is about to be made (a warm load needs
    none). A secret the user named must exist; the default name may be absent (anonymous access)."""

    def get() -> str | None:
        if explicit:
            return resolve_secret(explicit)
        return resolve_optional_secret(default)

    return get


def repo_path(path: str) -> str:
    """A script's path in the repository, normalised. A leading ``/`` means the repository root (Prefect
    1's examples wrote ``path="/flows/flow.py"``); ``..`` escapes and other oddities are refused."""
    if isinstance(path, str) and path.startswith("/"):
        path = path.lstrip("/")
    return safe_relpath(path)


class RepoStorage(Storage):
    """Base of the storages that load a script from a repository at a pinned commit."""

    #: the attribute holding the script's repo-relative path ("path", or "flow_path" for Git)
    path_field: ClassVar[str] = "path"
    #: the attribute holding the requested ref ("ref", or "commit" for CodeCommit)
    ref_field: ClassVar[str] = "ref"
    #: whether ``repo=`` names the repository as the git remote's path does (``gitflows check`` compares
    #: it with remote "origin"); Bitbucket and CodeCommit name it otherwise
    repo_is_remote_path: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        kwargs["stored_as_script"] = True
        super().__init__(**kwargs)
        self.sha: str | None = None
        self.closures: dict[str, Closure] = {}

    # Subclasses build their host (and import their client library) here.
    def make_host(self) -> Host:
        raise NotImplementedError

    @property
    def script_path(self) -> str | None:
        value = getattr(self, self.path_field)
        return None if value is None else str(value)

    @property
    def requested_ref(self) -> str | None:
        value = getattr(self, self.ref_field)
        return None if value is None else str(value)

    def _location_for(self, flow: Flow) -> str:
        if not self.script_path:
            raise ConfigurationError(f"{self.type_name} storage for flow {flow.name!r} needs "
                                     f"{self.path_field}= (the script's path in the repository)")
        return repo_path(self.script_path)

    def build(self) -> RepoStorage:
        """Pin the requested ref to its commit SHA and record each flow's files with their blob ids."""
        self.run_basic_healthchecks()
        host = self.make_host()
        self.sha = resolve(host, self.requested_ref)
        cache = Cache()
        for name, location in self.flows.items():
            loaded = load(host, location, self.sha, name, cache=cache, from_host=True)
            self.closures[name] = loaded.closure
        return self

    @property
    def own_location(self) -> str | None:
        return self.script_path

    def _load(self, name: str | None, location: str, ref: str | None = None) -> Flow:
        """Load the flow *name* (None: the only one) from the script at *location*, at the pinned SHA
        (else ``ref``, else the default branch). *name* selects a flow inside the script; it is never
        a path: the script fetched is *location*, which the base took from ``flows`` or ``path``.
        ``get_flow(..., ref="...")`` (the 2020 API) loads at that ref instead, resolved once."""
        location = repo_path(location)
        override = ref
        ref = override or self.sha or self.requested_ref
        expected = self.closures.get(name) if (name and self.sha and not override) else None
        if expected and location != expected[0][0]:
            expected = None  # a different script than the one recorded
        # Prefect 1's GitHub storage logged these two lines; every repository storage does here
        self.logger.info("Downloading flow from %s storage - repo: %r, path: %r%s", self.type_name,
                         getattr(self, "repo", None), location,
                         f", ref: {(override or self.requested_ref)!r}"
                         if (override or self.requested_ref) is not None else "")
        loaded = load(self.make_host(), location, ref, name, expected=expected)
        self.logger.info("Flow successfully downloaded. Using commit: %s", loaded.sha)
        return loaded.flow

    def serialize(self) -> dict[str, Any]:
        data = super().serialize()
        data["sha"] = self.sha
        data["closures"] = {name: [list(item) for item in closure] for name, closure in self.closures.items()}
        return data

    def restore(self, data: dict[str, Any]) -> None:
        sha = data.get("sha")
        if sha is not None and not is_full_sha(sha):
            raise ConfigurationError(f"serialized {self.type_name} storage: sha {sha!r} is not a full commit SHA")
        self.sha = sha
        closures = data.get("closures") or {}
        try:
            self.closures = {str(n): [(str(p), str(b)) for p, b in c] for n, c in closures.items()}
        except (TypeError, ValueError, AttributeError):
            raise ConfigurationError(f"serialized {self.type_name} storage: 'closures' must map flow names to "
                                     "[[path, blob id], ...]") from None
