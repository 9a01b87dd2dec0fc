"""A real git repository made in a test, and the facts API fakes serve from it (real blob ids)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "Test",
       "GIT_COMMITTER_EMAIL": "test@example.com", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null"}


class GitRepo:
    def __init__(self, path: Path, default_branch: str = "main") -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.default_branch = default_branch
        self.git("init", "-q", "-b", default_branch)

    def git(self, *args: str, input: bytes | None = None) -> str:
        env = dict(os.environ, **ENV)
        out = subprocess.run(["git", *args], cwd=self.path, env=env, check=True, capture_output=True, input=input)
        return out.stdout.decode()

    def commit(self, files: dict[str, str | bytes | None], message: str = "change", branch: str | None = None) -> str:
        """Write (or delete, with None) files and commit them on *branch* (default: the current one)."""
        if branch:
            self.git("checkout", "-q", "-B", branch)
        for rel, content in files.items():
            target = self.path / rel
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        sha = self.rev_parse("HEAD")
        if branch:
            self.git("checkout", "-q", self.default_branch)
        assert sha
        return sha

    def tag(self, name: str, ref: str = "HEAD") -> None:
        self.git("tag", name, ref)

    def rev_parse(self, ref: str) -> str | None:
        known = self.__dict__.setdefault("_commit_cache", {})
        if ref in known:  # a full commit id names the same commit forever
            return known[ref]
        try:
            sha = self.git("rev-parse", "--verify", "-q", f"{ref}^{{commit}}").strip()
        except subprocess.CalledProcessError:
            return None
        if sha == ref:
            known[ref] = sha
        return sha

    def ls_tree(self, sha: str) -> list[dict]:
        """Every entry (trees too), recursively: mode, type, blob/tree id, size, path."""
        cache = self.__dict__.setdefault("_ls_cache", {})
        if len(sha) == 40 and sha in cache:  # an object id's contents never change
            return cache[sha]
        out = self.git("ls-tree", "-r", "-t", "-l", sha)
        entries = []
        for line in out.splitlines():
            meta, path = line.split("\t", 1)
            mode, kind, oid, size = meta.split()
            entries.append({"mode": mode, "type": kind, "sha": oid, "size": None if size == "-" else int(size),
                            "path": path})
        if len(sha) == 40:
            cache[sha] = entries
        return entries

    def cat(self, oid: str) -> bytes:
        cache = self.__dict__.setdefault("_blob_cache", {})
        if oid not in cache:
            env = dict(os.environ, **ENV)
            cache[oid] = subprocess.run(["git", "cat-file", "blob", oid], cwd=self.path, env=env, check=True,
                                        capture_output=True).stdout
        return cache[oid]

    def blob_at(self, sha: str, path: str) -> tuple[str, bytes] | None:
        entry = self.entry_at(sha, path) if path.strip("/") else None
        if entry is None or entry["type"] != "blob" or entry["path"] != path:
            return None
        return entry["sha"], self.cat(entry["sha"])

    def entry_at(self, sha: str, path: str) -> dict | None:
        """The entry (blob, tree or submodule commit) at *path* in commit *sha*; the root is a tree with path ''."""
        path = path.strip("/")
        if not path:
            return {"mode": "040000", "type": "tree", "sha": self.git("rev-parse", f"{sha}^{{tree}}").strip(),
                    "size": None, "path": ""}
        index = self.__dict__.setdefault("_index_cache", {})
        if sha not in index:  # path -> entry, so fakes answer per path in constant time at 30,000 files
            index[sha] = {e["path"]: e for e in self.ls_tree(sha)}
        return index[sha].get(path)

    def list_dir(self, sha: str, path: str = "", recursive: bool = False) -> list[dict] | None:
        """The entries of folder *path* ('' = root) at commit *sha*: direct ones only unless *recursive* (then
        everything below it); paths stay relative to the repository root, in git's tree order. None when
        *path* is not a folder at that commit."""
        path = path.strip("/")
        folder = self.entry_at(sha, path)
        if folder is None or folder["type"] != "tree":
            return None
        prefix = path + "/" if path else ""
        return [e for e in self.ls_tree(sha)
                if e["path"].startswith(prefix) and (recursive or "/" not in e["path"][len(prefix):])]

    def branches(self) -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
        return dict(line.split() for line in out.splitlines())

    def tags(self) -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(refname:short) %(*objectname) %(objectname)", "refs/tags")
        result = {}
        for line in out.splitlines():
            parts = line.split()
            result[parts[0]] = parts[-1] if len(parts) == 2 else parts[1]
        return result

    def commit_info(self, sha: str) -> dict:
        fmt = "%H%n%T%n%P%n%an%n%ae%n%aI%n%cn%n%ce%n%cI%n%B"
        lines = self.git("show", "-s", f"--format={fmt}", sha).split("\n")
        return {"sha": lines[0], "tree": lines[1], "parents": lines[2].split(), "author_name": lines[3],
                "author_email": lines[4], "author_date": lines[5], "committer_name": lines[6],
                "committer_email": lines[7], "committer_date": lines[8], "message": "\n".join(lines[9:]).strip()}


FLOW_WITH_HELPERS = {
    "flows/etl.py": (
        "from gitflows import Flow, Parameter, task\n"
        "from lib.helpers import scale\n"
        "from lib import fmt\n"
        "import consts\n"
        "\n"
        "@task\n"
        "def extract(n):\n"
        "    return list(range(n))\n"
        "\n"
        "@task\n"
        "def transform(rows):\n"
        "    return fmt.label(scale(rows, consts.FACTOR))\n"
        "\n"
        "with Flow('etl') as flow:\n"
        "    transform(extract(Parameter('n', default=3)))\n"
        "\n"
        "with Flow('other') as other:\n"
        "    extract(2)\n"
    ),
    "flows/lib/__init__.py": "",
    "flows/lib/helpers.py": "def scale(rows, factor):\n    return [r * factor for r in rows]\n",
    "flows/lib/fmt.py": "from .helpers import scale\n\ndef label(rows):\n    return 'v1:' + ','.join(map(str, rows))\n",
    "flows/consts.py": "FACTOR = 10\n",
    "flows/unrelated.py": "raise RuntimeError('never imported')\n",
    "README.md": "# flows\n",
}
