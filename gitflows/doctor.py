"""``gitflows doctor``: what this machine and this repository need, checked, with what to fix.

Each check is a :class:`Finding`: ``ok``, ``note`` (fine, worth knowing: an extra not installed
that nothing here uses) or ``problem`` (something a flow here needs is missing, with the fix).
Nothing is executed from the repository: flows and the secrets they name are read from syntax
trees; the registry is opened read-only (never created).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from gitflows.errors import GitflowsError, ScriptError
from gitflows.inspection import UNKNOWN, inspect_file
from gitflows.localgit import find_repo_root, git, tracked_python_files

#: backend family -> (module to look for, storage types that need it)
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "github": ("github", ("GitHub",)),
    "gitlab": ("gitlab", ("GitLab",)),
    "bitbucket": ("atlassian", ("Bitbucket",)),
    "aws": ("boto3", ("S3", "CodeCommit")),
    "git": ("dulwich", ("Git",)),
    "gcs": ("google.cloud.storage", ("GCS",)),
    "azure": ("azure.storage.blob", ("Azure",)),
    "docker": ("docker", ("Docker",)),
    "postgres": ("psycopg", ()),
}
#: the default secret each storage reads when its own ``*_secret`` argument is not given
DEFAULT_SECRETS = {"GitHub": "GITHUB_ACCESS_TOKEN", "GitLab": "GITLAB_ACCESS_TOKEN",
                   "Bitbucket": "BITBUCKET_ACCESS_TOKEN"}


@dataclass
class Finding:
    level: str  # ok | note | problem
    what: str
    detail: str

    def __str__(self) -> str:
        mark = {"ok": "ok     ", "note": "note   ", "problem": "PROBLEM"}[self.level]
        return f"{mark} {self.what}: {self.detail}"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _flows_here(root: str) -> list[tuple[str, str, dict[str, object], int]]:
    """(path, storage type, storage args, line) of every flow in the repository's tracked files."""
    found = []
    for rel in tracked_python_files(root) or []:
        path = os.path.join(root, rel)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            if b"Flow(" not in data:
                continue
            info = inspect_file(path=rel, contents=data)
        except (OSError, ScriptError):
            continue
        for flow in info.flows:
            if flow.storage is not None:
                found.append((rel, flow.storage.type, dict(flow.storage.args), flow.lineno))
    return found


def check_install() -> list[Finding]:
    findings = [Finding("ok", "gitflows", f"{_version()} on Python {sys.version.split()[0]} ({sys.executable})")]
    findings.append(Finding("ok", "git", "found") if shutil.which("git") else
                    Finding("problem", "git", "the git binary is not on PATH; install git (check, register and "
                                              "diff read the repository with it)"))
    return findings


def check_extras(needed: set[str]) -> list[Finding]:
    findings = []
    for extra, (module, types) in EXTRAS.items():
        users = sorted(set(types) & needed)
        if _installed(module):
            findings.append(Finding("ok", f"extra {extra}", "installed"))
        elif users:
            findings.append(Finding("problem", f"extra {extra}", f"not installed, and flows here use "
                                    f"{', '.join(users)}: pip install -e '.[{extra}]' in the gitflows checkout"))
        else:
            findings.append(Finding("note", f"extra {extra}", "not installed (no flow here needs it)"))
    return findings


def check_registry() -> list[Finding]:
    from gitflows.registry import open_registry
    from gitflows.registry.sql import NoRegistryError

    try:
        registry = open_registry(create=False)
        count = len(registry.flows())
    except NoRegistryError as exc:
        return [Finding("note", "registry", str(exc))]
    except GitflowsError as exc:
        return [Finding("problem", "registry", f"{exc}")]
    return [Finding("ok", "registry", f"{registry.dialect.describe()} reachable, {count} flow(s) registered")]


def check_secrets(flows: list[tuple[str, str, dict[str, object], int]]) -> list[Finding]:
    from gitflows.secrets import resolve_optional_secret

    named: dict[str, str] = {}
    for rel, kind, args, line in flows:
        names: list[object] = [v for k, v in args.items() if k.endswith("_secret") or k.endswith("_secret_name")]
        listed = args.get("secrets")
        if isinstance(listed, list):
            names += listed
        if kind in DEFAULT_SECRETS and not any(k.endswith("_secret") for k in args):
            names.append(DEFAULT_SECRETS[kind])
        for name in names:
            if isinstance(name, str) and name and not name.startswith(UNKNOWN):
                named.setdefault(name, f"{rel}:{line}")
    findings = []
    for name, where in sorted(named.items()):
        if resolve_optional_secret(name) is None:
            findings.append(Finding("problem", f"secret {name}", f"named by {where}, not found (environment, "
                                    "keyring, secrets file); set it where the flow is built and run"))
        else:
            findings.append(Finding("ok", f"secret {name}", f"resolvable (named by {where})"))
    return findings


def check_hooks(root: str) -> list[Finding]:
    try:
        hooks_dir = git(root, "rev-parse", "--git-path", "hooks").decode().strip()
    except GitflowsError:
        return []
    hooks_dir = hooks_dir if os.path.isabs(hooks_dir) else os.path.join(root, hooks_dir)
    findings = []
    for name in ("pre-commit", "pre-push"):
        path = os.path.join(hooks_dir, name)
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            findings.append(Finding("note", f"hook {name}", "not installed (gitflows hooks install)"))
            continue
        if "gitflows" not in text:
            findings.append(Finding("note", f"hook {name}", "another tool's hook is installed"))
            continue
        python = next((line.split("=", 1)[1].strip().strip('"') for line in text.splitlines()
                       if line.startswith("PYTHON=")), None)
        if python and not os.access(python, os.X_OK):
            findings.append(Finding("problem", f"hook {name}", f"runs {python}, which is gone; reinstall with "
                                    "gitflows hooks install --force"))
        else:
            findings.append(Finding("ok", f"hook {name}", f"installed ({python or 'gitflows on PATH'})"))
    return findings


def check_docker(needed: set[str]) -> list[Finding]:
    if "Docker" not in needed or not _installed("docker"):
        return []
    try:
        out = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                             text=True, timeout=10)
        ok = out.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return [Finding("ok", "docker daemon", "reachable") if ok else
            Finding("note", "docker daemon", "not reachable; Docker flows here can still be built with "
                                             "build(daemonless=True)")]


def run(cwd: str) -> list[Finding]:
    root = find_repo_root(cwd)
    flows = _flows_here(root) if root else []
    needed = {kind for _, kind, _, _ in flows}
    findings = check_install() + check_extras(needed) + check_registry()
    if root is None:
        findings.append(Finding("note", "repository", "not inside a git repository: flows, secrets and hooks "
                                                      "not checked"))
        return findings
    findings.append(Finding("ok", "repository", f"{root}: {len(flows)} flow(s) with a storage"))
    return findings + check_secrets(flows) + check_hooks(root) + check_docker(needed)


def _version() -> str:
    from gitflows.version import __version__

    return __version__
