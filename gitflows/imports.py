"""Which files of a repository a script imports (its *closure*).

Pure functions over source text and repo-relative POSIX paths. The caller says
which paths exist (a folder on disk, a host's tree listing), so the same code
serves ``gitflows check`` on a working tree and the loader against a host.
"""

from __future__ import annotations

import ast
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gitflows.errors import ConfigurationError, ScriptError


@dataclass(frozen=True)
class ImportRef:
    """One import statement's target: ``module`` (dotted, may be empty) at relative ``level``."""

    module: str
    level: int
    names: tuple[str, ...] = ()
    lineno: int = 0


def too_deep(filename: str, exc: BaseException) -> ScriptError:
    """The one-line error for a script whose expressions nest too deeply for Python to parse or compile."""
    what = "MemoryError" if isinstance(exc, MemoryError) else str(exc) or type(exc).__name__
    return ScriptError(f"{filename}: too deeply nested to parse ({what}); split the expression into "
                       "smaller statements")


def parse(source: str | bytes, filename: str = "<script>") -> ast.Module:
    """``ast.parse``; an expression nested too deeply (RecursionError, MemoryError) is a :class:`ScriptError`.

    A SyntaxError passes through unchanged."""
    try:
        return ast.parse(source, filename=filename)
    except (RecursionError, MemoryError) as exc:
        raise too_deep(filename, exc) from None


def imports_of(source: str | bytes, filename: str = "<script>") -> list[ImportRef]:
    """Every ``import``/``from ... import`` in *source*, anywhere in the file."""
    return imports_in(parse(source, filename))


def imports_in(tree: ast.AST) -> list[ImportRef]:
    """Every ``import``/``from ... import`` in a parsed syntax tree."""
    refs: list[ImportRef] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            refs.extend(ImportRef(alias.name, 0, (), node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            refs.append(ImportRef(node.module or "", node.level, tuple(a.name for a in node.names), node.lineno))
    return refs


def safe_relpath(path: str) -> str:
    """Normalise a repo-relative POSIX path; refuse absolute paths and ``..`` escapes."""
    if not isinstance(path, str) or not path or "\x00" in path or "\\" in path:
        raise ConfigurationError(f"invalid path in repository: {path!r}")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise ConfigurationError(f"path must be relative to the repository root, got {path!r}")
    norm = posixpath.normpath(path)
    if norm == "." or norm.startswith("../") or norm == "..":
        raise ConfigurationError(f"path {path!r} escapes the repository root")
    return norm


def _candidates(module: str) -> list[str]:
    parts = module.split(".") if module else []
    if not parts:
        return []
    base = "/".join(parts)
    return [base + ".py", base + "/__init__.py"]


def _resolve_one(ref: ImportRef, importer: str, roots: list[str], exists: Callable[[str], bool]) -> list[str]:
    """Repo files that *ref* (found in *importer*) names, tried against each root folder."""
    found: list[str] = []
    if ref.level:
        pkg = posixpath.dirname(importer)
        for _ in range(ref.level - 1):
            pkg = posixpath.dirname(pkg)
        bases = [pkg]
    else:
        bases = roots
    for base in bases:
        targets = []
        mod_path = ref.module.replace(".", "/") if ref.module else ""
        prefix = posixpath.join(base, mod_path) if mod_path else base
        if mod_path:
            targets += [prefix + ".py", prefix + "/__init__.py"]
        # `from pkg import mod` may name submodules.
        for name in ref.names:
            if name != "*":
                targets.append(posixpath.join(prefix, name) + ".py")
                targets.append(posixpath.join(prefix, name, "__init__.py"))
        hit = False
        for target in targets:
            target = posixpath.normpath(target)
            if target.startswith("../") or target == "..":
                continue
            if exists(target):
                found.append(target)
                hit = True
        # Parent packages' __init__.py run on import too.
        if hit and mod_path:
            parts = mod_path.split("/")
            for i in range(1, len(parts)):
                init = posixpath.normpath(posixpath.join(base, *parts[:i], "__init__.py"))
                if exists(init):
                    found.append(init)
        if hit and not ref.level:
            break
    return found


def candidate_paths(ref: ImportRef, importer: str, roots: list[str]) -> list[str]:
    """Every repository path :func:`_resolve_one` may ask about for *ref* (files and the parent packages'
    ``__init__.py``), so a host can answer them all in one round trip before resolution asks."""
    asked: list[str] = []

    def record(path: str) -> bool:
        asked.append(path)
        return False

    _resolve_one(ref, importer, roots, record)
    mod_path = ref.module.replace(".", "/") if ref.module else ""
    parts = mod_path.split("/") if mod_path else []
    bases = [posixpath.dirname(importer)] if ref.level else roots
    if ref.level:
        for _ in range(ref.level - 1):
            bases = [posixpath.dirname(bases[0])]
    for base in bases:
        for i in range(1, len(parts)):
            init = posixpath.normpath(posixpath.join(base, *parts[:i], "__init__.py"))
            if not init.startswith("../"):
                asked.append(init)
    return list(dict.fromkeys(asked))


def local_closure(
    script: str,
    read: Callable[[str], bytes],
    exists: Callable[[str], bool],
    extra: Iterable[str] = (),
    prefetch: Callable[[list[str]], None] | None = None,
    probe: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """The repo-relative files *script* needs: itself, the sibling modules it imports, transitively.

    Absolute imports are looked up next to the script, then under the
    repository root (exactly what ``sys.path`` holds when the flow runs);
    relative imports from the importing file's package. Modules that resolve to no file of the repo
    (the standard library, installed packages) are not part of the closure.
    A file that does not parse is still included; its imports are not followed.

    The walk goes level by level (the script; what it imports; what those import...), and
    *prefetch*, when given, is called with each level's files before they are read, so a host
    that can fetch several files in one round trip does. *probe*, when given, is called with every
    path a level's imports could resolve to (:func:`candidate_paths`) before *exists* is asked about
    any of them: a host that reads many paths at once (GraphQL) answers existence and content for a
    whole level in one request, without listing folders.
    """
    script = safe_relpath(script)
    script_dir = posixpath.dirname(script)
    seen: dict[str, None] = {script: None}
    for path in extra:
        seen[safe_relpath(path)] = None
    level = [script]
    if prefetch:
        prefetch(list(seen))
    roots = list(dict.fromkeys([script_dir, ""]))
    while level:
        following: list[str] = []
        found: list[tuple[str, list[ImportRef]]] = []
        for current in level:
            try:
                found.append((current, imports_of(read(current), filename=current)))
            except (SyntaxError, ValueError, ScriptError):
                continue
        if probe:
            probe(list(dict.fromkeys(p for current, refs in found for ref in refs
                                     for p in candidate_paths(ref, current, roots) if p not in seen)))
        for current, refs in found:
            for ref in refs:
                for path in _resolve_one(ref, current, roots, exists):
                    if path not in seen:
                        seen[path] = None
                        following.append(path)
        if following and prefetch:
            prefetch(following)
        level = [p for p in following if p.endswith(".py")]
    return list(seen)
