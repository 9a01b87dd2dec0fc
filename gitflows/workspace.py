"""Facts about the local git working tree, read from files only (no network, no git binary)."""

from __future__ import annotations

import configparser
import os
import re
from urllib.parse import urlsplit


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
