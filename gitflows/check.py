"""``gitflows check``: offline validation of flow scripts from their syntax tree.

Nothing is executed and nothing goes over the network, so it runs in a
pre-commit hook whose environment lacks the flows' own imports. Each problem is
one line ``path:line: message``.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from gitflows.errors import GitflowsError, ScriptError
from gitflows.imports import ImportRef
from gitflows.inspection import UNKNOWN, ScriptInfo, StaticFlow, inspect_file
from gitflows.localgit import find_repo_root, remote_host_and_path, remote_url, tracked_python_files, without_credentials
from gitflows.storage import STORAGE_TYPES, storage_class
from gitflows.storage.repo import RepoStorage

#: every storage type a script may name: the storage registry's list (no backend library is imported)
KNOWN_STORAGES = set(STORAGE_TYPES)


def _repo_storage(type_name: str) -> type[RepoStorage] | None:
    """The class of a repository storage type (its path and repo arguments), or None for other storages."""
    cls = storage_class(type_name)
    return cls if issubclass(cls, RepoStorage) else None


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


def _literal(value: Any) -> str | None:
    return value if isinstance(value, str) and not value.startswith(UNKNOWN) else None


def _check_storage(display: str, flow: StaticFlow, repo_root: str | None, relpath: str | None) -> list[Problem]:
    label = f"flow {flow.name!r}" if flow.name else "flow"
    storage = flow.storage
    if storage is None:
        return [Problem(display, flow.lineno, f"{label} has no storage (pass storage=... to Flow or set "
                                              f"{flow.variable or 'flow'}.storage)")]
    problems: list[Problem] = []
    if storage.type not in KNOWN_STORAGES:
        problems.append(Problem(display, storage.lineno, f"{label}: unknown storage type {storage.type!r}; "
                                                         f"known: {', '.join(sorted(KNOWN_STORAGES))}"))
        return problems
    repo_class = _repo_storage(storage.type)
    arg = repo_class.path_field if repo_class else None
    if repo_class and arg:
        declared = _literal(storage.args.get(arg))
        if declared is None and arg in storage.args:
            pass  # computed at run time: cannot check statically
        elif declared is None:
            problems.append(Problem(display, storage.lineno,
                                    f"{label}: {storage.type} storage has no {arg}= (the script's path in the repo"
                                    + (f", here {relpath!r})" if relpath else ")")))
        elif relpath is not None and posixpath.normpath(declared.lstrip("/")) != relpath:
            problems.append(Problem(display, storage.lineno,
                                    f"{label}: storage {arg}={declared!r} does not match the file's path in the "
                                    f"repo {relpath!r}"))
        repo = _literal(storage.args.get("repo"))
        if repo and repo_root and repo_class.repo_is_remote_path:
            url = remote_url(repo_root)
            parsed = remote_host_and_path(url) if url else None
            if parsed and parsed[1].lower() != repo.strip("/").removesuffix(".git").lower():
                problems.append(Problem(display, storage.lineno,
                                        f"{label}: storage repo={repo!r} does not match remote 'origin' "
                                        f"({without_credentials(url or '')})"))
    if storage.type == "Bitbucket" and "host" not in storage.args and "workspace" not in storage.args:
        problems.append(Problem(display, storage.lineno, f"{label}: Bitbucket storage has neither host= (Bitbucket "
                                "Server) nor workspace= (Bitbucket Cloud); it cannot load the flow"))
    if storage.type == "Local" and storage.args.get("stored_as_script") is True:
        path = _literal(storage.args.get("path"))
        if path and (path.endswith(".py") or "/" in path) and not os.path.exists(path):
            problems.append(Problem(display, storage.lineno, f"{label}: Local storage path {path!r} does not exist"))
    if storage.type in ("Local", "Module") and repo_root and relpath:
        problems.append(Problem(display, storage.lineno,
                                f"{label}: {storage.type} storage keeps the flow on this machine, so pushing never "
                                f"registers it; to register it from a push, use "
                                f"Git(flow_path={relpath!r}, repo=...) (or GitHub, GitLab, Bitbucket, CodeCommit)"))
    return problems


def _check_imports(display: str, file_path: str, info: ScriptInfo) -> list[Problem]:
    """Relative imports must resolve; a local package must contain the submodule asked for."""
    problems: list[Problem] = []
    here = os.path.dirname(os.path.abspath(file_path))
    for ref in info.imports:
        if ref.level:
            base = here
            for _ in range(ref.level - 1):
                base = os.path.dirname(base)
            if not _module_exists(base, ref):
                shown = "." * ref.level + (ref.module or ", ".join(ref.names))
                problems.append(Problem(display, ref.lineno,
                                        f"imports {shown} but no such file next to the script"))
        elif ref.module:
            top = ref.module.split(".")[0]
            if os.path.isdir(os.path.join(here, top)) and not _module_exists(here, ref):
                problems.append(Problem(display, ref.lineno,
                                        f"imports {ref.module} but {ref.module.replace('.', '/')}.py does not exist"))
    return problems


def _module_exists(base: str, ref: ImportRef) -> bool:
    if not ref.module:  # `from . import a, b`: each name is a module (or a name in the package's __init__)
        if os.path.isfile(os.path.join(base, "__init__.py")):
            return True
        return all(os.path.isfile(os.path.join(base, n + ".py")) or os.path.isdir(os.path.join(base, n))
                   for n in ref.names if n != "*")
    path = os.path.join(base, *ref.module.split("."))
    return os.path.isfile(path + ".py") or os.path.isdir(path)


_FLOW_NAME = re.compile(rb"""\bFlow\(\s*(?:name\s*=\s*)?["']([^"'\n]+)["']""")


def _names_elsewhere(paths: list[str]) -> dict[str, str]:
    """Flow names defined in the repository's other tracked Python files: {name: "path:line"}.

    A quick text scan (no parsing), so checking one changed file in a repo of hundreds stays fast.
    """
    roots = {find_repo_root(p) for p in paths} - {None}
    found: dict[str, str] = {}
    for root in roots:
        assert root is not None
        given = {os.path.realpath(p) for p in paths}
        tracked = tracked_python_files(root)
        if tracked is None:
            continue
        for rel in tracked:
            full = os.path.join(root, rel)
            if os.path.realpath(full) in given:
                continue
            try:
                with open(full, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            for match in _FLOW_NAME.finditer(data):
                line = data.count(b"\n", 0, match.start()) + 1
                found.setdefault(match.group(1).decode("utf-8", "replace"), f"{os.path.relpath(full)}:{line}")
    return found


def check_files(paths: list[str], contents: dict[str, bytes] | None = None) -> tuple[list[Problem], int]:
    """Check every script; return the problems and how many flows were found. With *contents* (the
    staged version of each path, for the pre-commit hook), that text is checked, not the working tree's."""
    problems: list[Problem] = []
    names: dict[str, str] = _names_elsewhere(paths)
    count = 0
    for path in paths:
        try:
            info = inspect_file(path, contents=contents[path]) if contents is not None else inspect_file(path)
        except ScriptError as exc:
            problems.append(_from_error(path, exc))
            continue
        except GitflowsError as exc:
            problems.append(Problem(path, 0, str(exc)))
            continue
        if not info.flows:
            # a helper module, or a script without flows: hooks pass every Python file
            problems.extend(_check_imports(path, path, info))
            continue
        repo_root = find_repo_root(path)
        relpath = os.path.relpath(os.path.abspath(path), repo_root).replace(os.sep, "/") if repo_root else None
        for flow in info.flows:
            count += 1
            if flow.name is None:
                problems.append(Problem(path, flow.lineno, "flow name is not a string literal; give Flow a "
                                                           "literal name so it can be registered and found"))
            elif flow.name in names and names[flow.name] != f"{path}:{flow.lineno}":
                problems.append(Problem(path, flow.lineno, f"flow name {flow.name!r} is also used at "
                                                           f"{names[flow.name]}; flow names must be unique"))
            else:
                names[flow.name] = f"{path}:{flow.lineno}"
            problems.extend(_check_storage(path, flow, repo_root, relpath))
        problems.extend(_check_imports(path, path, info))
    return problems, count


def _from_error(path: str, exc: ScriptError) -> Problem:
    text = str(exc)
    prefix = f"{path}:"
    if text.startswith(prefix):
        rest = text[len(prefix):]
        line, _, message = rest.partition(": ")
        if line.isdigit():
            return Problem(path, int(line), message)
    return Problem(path, 0, text)
