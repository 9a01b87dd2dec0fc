"""The local git repository: every place gitflows reads it.

Facts about the working tree read from files only (repository root, remote URLs: no network, no
git binary), and the object database read through the ``git`` binary (a commit's files as a
:class:`Snapshot`, tracked files), for ``check``, ``register`` and ``diff``.
"""

from __future__ import annotations

import configparser
import errno
import os
import re
import subprocess
from collections.abc import Iterable
from urllib.parse import urlsplit

from gitflows.errors import GitflowsError, ScriptError
from gitflows.imports import local_closure
from gitflows.inspection import ScriptInfo, inspect_file


def find_repo_root(path: str) -> str | None:
    """The folder holding ``.git`` above *path*, or None."""
    current = os.path.abspath(path if os.path.isdir(path) else os.path.dirname(path) or ".")
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _git_dir(root: str) -> str | None:
    dot_git = os.path.join(root, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    try:
        with open(dot_git, encoding="utf-8") as fh:
            line = fh.readline().strip()
    except OSError:
        return None
    if line.startswith("gitdir:"):
        gitdir = line.split(":", 1)[1].strip()
        gitdir = gitdir if os.path.isabs(gitdir) else os.path.join(root, gitdir)
        common = os.path.join(gitdir, "commondir")
        if os.path.isfile(common):
            with open(common, encoding="utf-8") as fh:
                rel = fh.read().strip()
            return os.path.normpath(os.path.join(gitdir, rel))
        return gitdir
    return None


def remote_url(root: str, name: str = "origin") -> str | None:
    """The URL of remote *name* from the repo's config, or None."""
    gitdir = _git_dir(root)
    if gitdir is None:
        return None
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(os.path.join(gitdir, "config"), encoding="utf-8")
    except configparser.Error:
        return None
    section = f'remote "{name}"'
    if parser.has_section(section) and parser.has_option(section, "url"):
        return parser.get(section, "url").strip()
    return None


_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>.+)$")


def without_credentials(url: str) -> str:
    """*url* with any ``user:password@`` removed (safe to print)."""
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return parts._replace(netloc=host).geturl()
    return url


def remote_host_and_path(url: str) -> tuple[str, str] | None:
    """``("github.com", "acme/flows")`` from any https / ssh / scp-like / git URL."""
    parts = urlsplit(url)
    if parts.scheme and parts.netloc:
        host, path = parts.hostname or "", parts.path
    else:
        match = _SCP_LIKE.match(url)
        if not match or os.path.exists(url):
            return None
        host, path = match.group("host"), match.group("path")
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    if path.startswith("scm/"):  # Bitbucket Server clone URLs
        path = path[4:]
    return host.lower(), path


def git(root: str, *args: str, input: bytes | None = None) -> bytes:
    out = subprocess.run(["git", "-C", root, *args], capture_output=True, input=input)
    if out.returncode != 0:
        raise GitflowsError(f"git {' '.join(args[:3])} failed in {root}: {out.stderr.decode(errors='replace').strip()}")
    return out.stdout


class Snapshot:
    """The files of one commit, read lazily from the object database."""

    def __init__(self, root: str, sha: str) -> None:
        self.root, self.sha = root, sha
        self.blobs: dict[str, str] = {}
        for line in git(root, "ls-tree", "-r", "-z", sha).split(b"\0"):
            if not line:
                continue
            meta, path = line.split(b"\t", 1)
            mode, kind, oid = meta.split()
            if kind == b"blob":
                self.blobs[path.decode("utf-8", "surrogateescape")] = oid.decode()
        self._data: dict[str, bytes] = {}
        self._info: dict[str, ScriptInfo | ScriptError] = {}

    def inspect(self, path: str) -> ScriptInfo:
        """The script's syntax tree, read once (raises ScriptError when it does not parse)."""
        if path not in self._info:
            try:
                self._info[path] = inspect_file(contents=self.read(path))
            except ScriptError as exc:
                self._info[path] = exc
        found = self._info[path]
        if isinstance(found, ScriptError):
            raise found
        return found

    def read(self, path: str) -> bytes:
        if path not in self._data:
            self._data[path] = git(self.root, "cat-file", "blob", self.blobs[path])
        return self._data[path]

    def read_many(self, paths: Iterable[str]) -> None:
        wanted = [p for p in paths if p not in self._data and p in self.blobs]
        if not wanted:
            return
        out = git(self.root, "cat-file", "--batch", input="".join(self.blobs[p] + "\n" for p in wanted).encode())
        pos = 0
        for p in wanted:
            header_end = out.index(b"\n", pos)
            size = int(out[pos:header_end].split()[2])
            self._data[p] = out[header_end + 1: header_end + 1 + size]
            pos = header_end + 1 + size + 1

    def closure(self, script: str) -> list[tuple[str, str]]:
        paths = local_closure(script, read=self.read, exists=lambda p: p in self.blobs, prefetch=self.read_many)
        return [(p, self.blobs[p]) for p in paths]


def in_git_repo(root: str) -> bool:
    return subprocess.run(["git", "-C", root, "rev-parse", "--git-dir"], capture_output=True).returncode == 0


def tracked_python_files(root: str) -> list[str] | None:
    """The repository's tracked ``*.py`` files (repo-relative), or None when git cannot say."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--", "*.py"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [rel for rel in out.stdout.decode("utf-8", "surrogateescape").split("\0") if rel]


def install_hooks(root: str, force: bool = False) -> list[str]:
    """Copy gitflows' pre-commit and pre-push hooks into the repository at *root*; the paths written.
    An existing hook is a FileExistsError unless *force*."""
    import sys
    from importlib import resources

    hooks_dir = git(root, "rev-parse", "--git-path", "hooks").decode().strip()
    hooks_dir = hooks_dir if os.path.isabs(hooks_dir) else os.path.join(root, hooks_dir)
    os.makedirs(hooks_dir, exist_ok=True)
    targets = [os.path.join(hooks_dir, name) for name in ("pre-commit", "pre-push")]
    for target in targets:
        if os.path.exists(target) and not force:
            raise FileExistsError(errno.EEXIST, "hook exists", target)
    for name, target in zip(("pre-commit", "pre-push"), targets, strict=True):
        text = (resources.files("gitflows") / "hook_scripts" / name).read_text(encoding="utf-8")
        # the interpreter that installed the hook runs it: committing from a shell without the venv works
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text.replace("@PYTHON@", sys.executable.replace('"', '\\"')))
        os.chmod(target, 0o755)
    return targets


def staged_python_files(root: str) -> dict[str, bytes]:
    """The Python files added, copied, modified or renamed in the index, as staged: {path relative to the
    current folder: staged bytes}. Paths with spaces or newlines are safe (NUL-separated)."""
    names = git(root, "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR", "--", "*.py")
    staged: dict[str, bytes] = {}
    for rel in names.decode("utf-8", "surrogateescape").split("\0"):
        if rel:
            shown = os.path.relpath(os.path.join(root, rel))
            staged[shown] = git(root, "cat-file", "blob", f":{rel}")
    return staged
