"""What goes into a Docker storage's image: the ``files`` it names (copied into a build context, or read
into a daemonless layer), and the gitflows requirement the image installs."""

from __future__ import annotations

import filecmp
import functools
import os
import posixpath
import re
import shutil
from collections.abc import Mapping

from gitflows.errors import ConfigurationError, ImageBuildError, PathNotFoundError
from gitflows.version import __version__


def gitflows_requirement(version: str | None) -> str:
    """What the image pip-installs: ``gitflows==VERSION``, or a requirement given whole
    (``gitflows @ git+https://...@main``, a wheel's path or URL). Anything else is a ValueError."""
    if not version:
        return "gitflows"
    if version.lower().startswith("gitflows") or "/" in version:
        return version
    if re.fullmatch(r"[0-9][0-9A-Za-z.+!_-]*", version):
        return f"gitflows=={version}"
    raise ConfigurationError(f"Docker storage: gitflows_version {version!r} is neither a version (e.g. "
                             f"{__version__!r}) nor a pip requirement (e.g. 'gitflows @ git+https://host/gitflows.git"
                             f"@{version}'); give one of those")


def from_an_index(requirement: str) -> bool:
    """Whether pip would fetch this requirement by name from a package index. No package index holds
    *this* gitflows: such a requirement is met with a wheel built from the checkout instead."""
    return requirement == "gitflows" or requirement.startswith("gitflows==")


def checkout_wheel(directory: str) -> str:
    """A wheel of the running gitflows, built from its checkout (once per process), copied into *directory*;
    returns its file name."""
    built = _built_wheel()
    os.makedirs(directory, exist_ok=True)
    shutil.copy2(built, directory)
    return os.path.basename(built)


@functools.cache
def _built_wheel() -> str:
    import subprocess
    import sys
    import tempfile

    import gitflows

    root = os.path.dirname(os.path.dirname(os.path.abspath(gitflows.__file__)))
    pyproject = os.path.join(root, "pyproject.toml")
    if not os.path.isfile(pyproject) or 'name = "gitflows"' not in open(pyproject, encoding="utf-8").read():
        raise ConfigurationError(
            "Docker storage: gitflows is not installed from a checkout here, so no wheel of it can be built for "
            "the image (and no package index holds it); give wheelhouse= (a folder holding a gitflows wheel) or "
            "gitflows_version= as a wheel's path or URL")
    out = tempfile.mkdtemp(prefix="gitflows-wheel-")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, root],
                          capture_output=True, text=True)
    wheels = sorted(f for f in os.listdir(out) if f.startswith("gitflows-") and f.endswith(".whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel was written"]
        raise ImageBuildError(f"Docker storage: building a wheel of gitflows from {root} failed: {last[0]}")
    return os.path.join(out, wheels[-1])


def copy_into(src: str, directory: str) -> str:
    """Copy a file or folder named in ``files`` into the build context (by its base name); return that name.
    Two entries with one base name are an error (the same file twice is not)."""
    name = os.path.basename(src.rstrip("/\\"))
    target = os.path.join(directory, name)
    if not os.path.exists(src):
        raise PathNotFoundError(f"Docker storage: files= names {src}, which does not exist")
    clash = os.path.exists(target) and (os.path.isdir(src) or not filecmp.cmp(src, target, shallow=False))
    if clash:
        raise ConfigurationError(f"Docker storage: File {target} already exists in {directory}: two files= "
                                 f"entries share the base name {name!r}; rename one")
    if os.path.isdir(src):
        shutil.copytree(src, target, symlinks=False)
    else:
        shutil.copy2(src, target)
    return name


def files_contents(files: Mapping[str, str]) -> dict[str, bytes]:
    """Image path -> bytes for ``files`` (folders walked; a destination ending in ``/`` takes the base name)."""
    out: dict[str, bytes] = {}
    for src, dest in files.items():
        if os.path.isdir(src):
            for folder, _, names in os.walk(src):
                for file_name in names:
                    full = os.path.join(folder, file_name)
                    out[posixpath.join(dest, os.path.relpath(full, src).replace(os.sep, "/"))] = _read(full, dest)
        else:
            out[dest + os.path.basename(src) if dest.endswith("/") else dest] = _read(src, dest)
    return out


def lookup(contents: Mapping[str, bytes], path: str) -> bytes:
    """``contents[path]`` with both sides normalised; FileNotFoundError when it is not there."""
    normalised = {posixpath.normpath(p): data for p, data in contents.items()}
    try:
        return normalised[posixpath.normpath(path)]
    except KeyError:
        raise FileNotFoundError(path) from None


def _read(src: str, dest: str) -> bytes:
    try:
        with open(src, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise PathNotFoundError(f"Docker storage: file {src} (for {dest}) does not exist") from None
