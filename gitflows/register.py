"""Registering flows from a git repository, pinned to a commit (what the pre-push hook runs).

Reads everything from the git object database at the pushed commit (``git ls-tree``, ``git
cat-file``): no checkout, and the working tree may differ. A flow script is registered when it, or a
repository file it imports, changed in the pushed range (or when it is named explicitly). Each
version records the commit SHA, the closure with its blob ids, and the flow's fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gitflows.cache import Cache, closure_key
from gitflows.errors import (
    AuthenticationError,
    ConfigurationError,
    GitflowsError,
    RefNotFoundError,
    RepoNotFoundError,
    ScriptError,
)
from gitflows.imports import safe_relpath
from gitflows.inspection import UNKNOWN
from gitflows.loader import commit_visible
from gitflows.localgit import Snapshot, git
from gitflows.redact import get_logger
from gitflows.registry import FlowVersion, Registry
from gitflows.script import extract_flows
from gitflows.storage import from_dict
from gitflows.storage.repo import RepoStorage

log = get_logger(__name__)
ZERO = "0" * 40


def flow_scripts(snap: Snapshot) -> list[str]:
    """Python files at the commit that define flows: a quick text test, then the syntax tree must
    show a ``Flow(...)`` call (a mention in a comment or docstring is not a flow). A script that
    does not parse is kept so that its error is reported; it is never executed."""
    pys = [p for p in snap.blobs if p.endswith(".py")]
    snap.read_many(pys)
    return [p for p in pys if b"Flow(" in snap.read(p) and _defines_flows(snap, p)]


def _defines_flows(snap: Snapshot, path: str) -> bool:
    try:
        return bool(snap.inspect(path).flows)
    except ScriptError:
        return True


@dataclass
class Executed:
    """What executing one flow script gave: each flow's name, fingerprint, structure and storage, or an error."""

    flows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    missing_import: bool = False  # the script's imports are not installed here: describe it statically


class ScriptRunner:
    """Executes flow scripts in a child process, so that no script can end the caller.

    One child serves every script in turn (one interpreter start for a whole push). A script that
    ends its process (``os._exit``, a signal, a crash), or takes longer than *timeout* seconds to load
    (``GITFLOWS_SCRIPT_TIMEOUT``, default 60; a script that hangs at import), gets an error naming it,
    its process group is killed, and the next script gets a fresh child. What scripts print goes to
    stderr, never into the answers.
    """

    def __init__(self, timeout: float | None = None) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self.timeout = timeout if timeout is not None else script_timeout()

    def __enter__(self) -> ScriptRunner:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is not None and self._proc is not None:  # Ctrl-C or an error: a script may be hanging
            _kill_group(self._proc)
        self.close()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _child(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        proc = subprocess.Popen([sys.executable, "-c", "from gitflows.register import _worker; _worker()"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True)
        assert proc.stdout is not None
        if _read_line(proc, time.monotonic() + max(self.timeout, 60.0)) != b"ready\n":
            _kill_group(proc)
            code = proc.wait()
            raise GitflowsError(f"could not start the process that loads flow scripts ({sys.executable}, exit "
                                f"status {code}); see the lines above")
        self._proc = proc
        return proc

    def run(self, file_path: str, extra_paths: list[str], display: str) -> Executed:
        proc = self._child()
        assert proc.stdin is not None and proc.stdout is not None
        request = {"file": file_path, "extra_paths": extra_paths, "display": display}
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
            line: bytes | None = _read_line(proc, time.monotonic() + self.timeout)
        except OSError:
            line = b""
        if line:
            return Executed(**json.loads(line))
        if line is None:
            _kill_group(proc)
            proc.wait()
            self._proc = None
            return Executed(error=f"{display}: loading the script took longer than {self.timeout:g}s (it may wait "
                                  "for input, a lock or the network at import); it was stopped and nothing was read "
                                  "from it. Move that work into a task, or raise GITFLOWS_SCRIPT_TIMEOUT")
        code = proc.wait()
        self._proc = None
        how = f"was killed by signal {-code}" if code < 0 else f"ended its process with exit status {code} (os._exit?)"
        return Executed(error=f"{display}: the script {how} while being loaded; nothing was read from it")


def script_timeout() -> float:
    """``GITFLOWS_SCRIPT_TIMEOUT``: seconds a flow script may take to load for register/diff (default 60)."""
    raw = os.environ.get("GITFLOWS_SCRIPT_TIMEOUT", "60")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value > 0 and value != float("inf")):
        raise ConfigurationError(f"GITFLOWS_SCRIPT_TIMEOUT={raw!r}: expected a positive number of seconds, "
                                 "e.g. 120")
    return value


def _read_line(proc: subprocess.Popen[bytes], deadline: float) -> bytes | None:
    """One line from *proc*'s stdout; b"" at end of file; None when *deadline* (monotonic) passes first."""
    import io
    import selectors

    stdout = proc.stdout
    assert isinstance(stdout, io.BufferedReader), "a PIPE with Popen's default buffering"  # which has read1
    fd = stdout.fileno()
    chunks: list[bytes] = []
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return None
            chunk = stdout.read1(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            if b"\n" in chunk:
                line = b"".join(chunks)
                assert line.endswith(b"\n"), "the worker writes one answer at a time"
                return line


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _worker() -> None:
    """The child of :class:`ScriptRunner`: one JSON request per line in, one JSON answer per line out."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the scripts' own output goes to stderr
    answers.write("ready\n")
    for line in sys.stdin:
        request = json.loads(line)
        answer: dict[str, Any]
        try:
            flows = extract_flows(file_path=request["file"], extra_paths=request["extra_paths"],
                                  display_name=request["display"])
            answer = {"flows": [{"name": f.name, "fingerprint": f.fingerprint(), "structure": f.structure(),
                                 "storage": f.storage.serialize() if f.storage is not None else None}
                                for f in flows]}
        except ScriptError as exc:
            answer = {"error": str(exc), "missing_import": isinstance(exc.__cause__, ImportError)}
        except BaseException as exc:  # noqa: BLE001 - a script may raise anything; the answer names it
            answer = {"error": f"{request['display']}: the script raised {type(exc).__name__}: {exc}"}
        sys.stdout.flush()
        answers.write(json.dumps(answer, default=repr) + "\n")


def changed_files(root: str, old: str | None, new: str) -> set[str] | None:
    """Paths changed between two commits; None means 'everything' (a new branch, or no base)."""
    if not old or old == ZERO:
        return None
    out = git(root, "diff", "--name-only", "-z", old, new)
    return {p for p in out.decode("utf-8", "surrogateescape").split("\0") if p}


@dataclass
class Outcome:
    name: str
    path: str
    version: int | None
    created: bool
    message: str


def _static_fingerprint(info_flow: Any, tasks: dict[str, str]) -> str:
    data = {"name": info_flow.name, "parameters": info_flow.parameters, "tasks": sorted(info_flow.tasks),
            "sources": {t: tasks.get(t) for t in sorted(set(info_flow.tasks))}}
    return "static:" + hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def register_commit(registry: Registry, root: str, sha: str, old: str | None = None,
                    paths: Iterable[str] | None = None, state: str = "pending",
                    progress: Callable[[int, int, str], object] | None = None) -> list[Outcome]:
    """Register the flows at commit *sha* whose script or imported files changed since *old*
    (or the scripts in *paths*). *progress(done, total, script)* is told before each script."""
    snap = Snapshot(root, sha)
    scripts = flow_scripts(snap)
    if paths is not None:
        wanted = {safe_relpath(p) for p in paths}
        missing = sorted(wanted - set(snap.blobs))
        if missing:
            raise ConfigurationError(f"not in commit {sha[:12]}: {', '.join(missing)}; commit it first (git add, "
                                     "git commit): only committed files are registered, pinned to their commit")
        scripts = [s for s in scripts if s in wanted]
    changed = changed_files(root, old, sha)
    outcomes: list[Outcome] = []
    cache = Cache()
    with ScriptRunner() as runner:
        for done, script in enumerate(scripts):
            closure = snap.closure(script)
            if changed is not None and not changed & {p for p, _ in closure}:
                continue
            if progress is not None:
                progress(done, len(scripts), script)
            outcomes.extend(_register_script(registry, snap, script, closure, cache, runner, state))
    return outcomes


def _register_script(registry: Registry, snap: Snapshot, script: str, closure: list[tuple[str, str]], cache: Cache,
                     runner: ScriptRunner, state: str) -> list[Outcome]:
    try:
        info = snap.inspect(script)
    except ScriptError as exc:
        return [Outcome("?", script, None, False, f"not registered: {exc}")]
    # Same files as the latest version of every flow here: same fingerprint, nothing to run or add.
    latest = {sf.name: registry.latest(sf.name) for sf in info.flows if sf.name}
    if latest and all(v is not None and [list(c) for c in v.closure] == [list(c) for c in closure]
                      for v in latest.values()):
        return [Outcome(name, script, v.version, False, f"unchanged: version {v.version} ({v.state})")
                for name, v in latest.items() if v is not None]
    files = {p: snap.read(p) for p, _ in closure}
    tree = cache.materialise(closure_key(("local",), snap.sha, closure),
                             files)
    with cache.using(tree):
        result = runner.run(str(tree.joinpath(*script.split("/"))), [str(tree)], f"{script} at {snap.sha[:12]}")
    if result.missing_import:
        log.info("%s: its imports are not installed here; fingerprinting from the syntax tree", script)
    elif result.error:
        return [Outcome("?", script, None, False, f"not registered: {result.error}")]
    executed = {f["name"]: f["fingerprint"] for f in result.flows}
    schedules = {f["name"]: f["structure"].get("schedule") for f in result.flows}
    structures = {f["name"]: f["structure"] for f in result.flows}
    outcomes = []
    for sf in info.flows:
        if sf.name is None:
            outcomes.append(Outcome("?", script, None, False, "not registered: the flow name is not a literal"))
            continue
        if sf.storage is None:
            outcomes.append(Outcome(sf.name, script, None, False, "not registered: the flow has no storage"))
            continue
        dynamic = [k for k, v in sf.storage.args.items() if isinstance(v, str) and v.startswith(UNKNOWN)]
        if dynamic:
            outcomes.append(Outcome(sf.name, script, None, False, f"not registered: storage argument(s) "
                                    f"{', '.join(dynamic)} are computed at run time"))
            continue
        try:
            storage = from_dict({"type": sf.storage.type, **sf.storage.args})
        except GitflowsError as exc:
            outcomes.append(Outcome(sf.name, script, None, False, f"not registered: {exc}"))
            continue
        if not isinstance(storage, RepoStorage):
            outcomes.append(Outcome(sf.name, script, None, False, f"not registered: {sf.storage.type} storage keeps "
                                    "the flow outside this repository, so a push cannot pin it; to register it from "
                                    f"the push, use Git(flow_path={script!r}, repo=...) (or GitHub, GitLab, "
                                    "Bitbucket, CodeCommit)"))
            continue
        declared = storage.script_path
        if declared and safe_relpath(declared) != script:
            outcomes.append(Outcome(sf.name, script, None, False, f"not registered: storage {storage.path_field}="
                                    f"{declared!r} is not the script's path {script!r}"))
            continue
        storage.flows[sf.name] = script
        storage.sha = snap.sha
        storage.closures[sf.name] = closure
        fingerprint = executed.get(sf.name) or _static_fingerprint(sf, info.tasks)
        data = storage.serialize()
        version = FlowVersion(name=sf.name, version=0, storage=data, repo=getattr(storage, "repo", None),
                              path=script, requested_ref=storage.requested_ref, sha=snap.sha, closure=closure,
                              fingerprint=fingerprint, labels=storage.labels, state=state, registered_at=0.0,
                              schedule=schedules.get(sf.name), structure=structures.get(sf.name))
        current, created = registry.register(version)
        note = "registered" if created else "unchanged"
        outcomes.append(Outcome(sf.name, script, current.version, created,
                                f"{note}: version {current.version} at {snap.sha[:12]} ({current.state})"))
    return outcomes


def register_range(registry: Registry, root: str, old: str | None, new: str, paths: Iterable[str] | None,
                   state: str, progress: Callable[[int, int, str], object] | None = None,
                   ) -> tuple[str | None, str, list[Outcome]]:
    """Register, as *state*, the flows changed between refs *old* (None or all zeros: from the start) and
    *new* (or the scripts in *paths*), pinned at *new*. Returns (base commit, commit, outcomes)."""
    sha = git(root, "rev-parse", "--verify", f"{new}^{{commit}}").decode().strip()
    base = git(root, "rev-parse", "--verify", f"{old}^{{commit}}").decode().strip() if old and old != ZERO else None
    return base, sha, register_commit(registry, root, sha, base, list(paths) if paths else None, state, progress)


@dataclass
class RemoteStatus:
    """Whether a version's commit can be fetched from where its storage loads: ``visible``, else why not,
    and whether waiting can help (``final``: the repository is missing, the credentials are refused, the
    storage is misconfigured — the commit will never appear by itself)."""

    visible: bool
    reason: str | None = None
    final: bool = False


def remote_status(version: FlowVersion) -> RemoteStatus:
    storage = from_dict(version.storage)
    if not isinstance(storage, RepoStorage) or not version.sha:
        return RemoteStatus(True)
    try:
        commit_visible(storage.make_host(), version.sha)
        return RemoteStatus(True)
    except (RepoNotFoundError, AuthenticationError, ConfigurationError) as exc:
        return RemoteStatus(False, str(exc), final=True)
    except RefNotFoundError:
        return RemoteStatus(False, f"commit {version.sha} is not on the remote yet (push it)")
    except GitflowsError as exc:
        log.info("%s v%d: commit %s not visible on the remote yet (%s)", version.name, version.version, version.sha, exc)
        return RemoteStatus(False, f"the remote could not be asked ({exc})")


def visible_on_remote(version: FlowVersion) -> bool:
    """Whether the version's commit can be fetched from where its storage loads from."""
    return remote_status(version).visible


def confirm_pending(registry: Registry) -> list[tuple[FlowVersion, RemoteStatus]]:
    """Confirm every pending version whose commit is now on the remote; each with its status."""
    results = []
    for version in registry.pending():
        status = remote_status(version)
        if status.visible:
            registry.confirm(version.name, version.version)
        results.append((version, status))
    return results


def register_flow(flow: Any, labels: Iterable[str] | None = None, build: bool = True,
                  registry_url: str | None = None) -> FlowVersion:
    """Register one flow object in the registry (what Prefect 1's ``flow.register()`` did).

    The flow's storage (when it has none, ``get_default_storage_class()()``: ``Local()``, as Prefect) records the flow and,
    with *build*, stores it: uploads a pickle or pins a repository ref to its commit and records
    every file's blob id. The version is registered as confirmed: the caller holds the flow and
    built its storage. An unchanged flow (same fingerprint, storage and files) gets no new version.
    """
    from gitflows.storage import get_default_storage_class

    if isinstance(labels, str):
        raise ConfigurationError("labels is a list of label names, not a single string")
    storage = flow.storage if flow.storage is not None else get_default_storage_class()()
    flow.storage = storage
    if flow.name not in storage.flows:
        storage.add_flow(flow)
    if build:
        storage.build()
    repo_storage = storage if isinstance(storage, RepoStorage) else None
    closure = list(repo_storage.closures.get(flow.name, [])) if repo_storage is not None else []
    storage_data = storage.serialize()
    digest = hashlib.sha256(json.dumps(storage_data, sort_keys=True, default=str).encode()).hexdigest()
    fingerprint = hashlib.sha256(f"{flow.fingerprint()}:{digest}".encode()).hexdigest()
    version = FlowVersion(
        name=flow.name, version=0, storage=storage_data, repo=getattr(storage, "repo", None),
        path=storage.flows.get(flow.name), requested_ref=repo_storage.requested_ref if repo_storage is not None else None,
        sha=repo_storage.sha if repo_storage is not None else None, closure=closure, fingerprint=fingerprint,
        labels=sorted(set(storage.labels) | set(labels or [])), state="confirmed", registered_at=0.0,
        schedule=flow.structure().get("schedule"), structure=flow.structure())
    from gitflows.registry import open_registry

    current, created = open_registry(registry_url).register(version)
    log.info("flow %r: %s version %d", flow.name, "registered" if created else "unchanged", current.version)
    return current
