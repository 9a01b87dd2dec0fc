"""Fake Bitbucket Server (REST 1.0) and Cloud (REST 2.0) APIs answering from a real git repository.

Server shapes: paged {"size","limit","isLastPage","values","start","nextPageStart"}, branches
with latestCommit, files (paths only), browse (a folder's direct children, paged, or a file's
lines), raw, and {"errors":[{"context","message","exceptionName"}]}.
Cloud shapes: repositories with mainbranch, refs/branches and refs/tags with target.hash and
{"pagelen","values","page","next"} pagination, src listings of a folder (direct entries unless
max_depth says deeper) and raw src, {"type":"error","error":{...}}.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote, unquote, urlencode

from .apis import FakeAPI, Reply, json_reply
from .gitrepo import GitRepo


def _server_error(status: int, message: str, exception: str) -> Reply:
    return json_reply(status, {"errors": [{"context": None, "message": message, "exceptionName": exception}]})


def _server_path(path: str) -> dict:
    """Bitbucket Server's Path object: {"components","parent","name","extension"?,"toString"}."""
    components = [c for c in path.split("/") if c]
    name = components[-1] if components else ""
    body: dict = {"components": components, "parent": "/".join(components[:-1]), "name": name}
    if "." in name and not name.endswith("."):
        body["extension"] = name.rsplit(".", 1)[1]
    body["toString"] = "/".join(components)
    return body


class FakeBitbucketServer(FakeAPI):
    def __init__(self, rsps, repo: GitRepo, project: str = "ACME", slug: str = "flows",
                 base: str = "http://127.0.0.1:8767", token: str | None = None, page_cap: int = 25,
                 extra_branches: int = 0) -> None:
        super().__init__(base=base, rsps=rsps)
        self.repo, self.project, self.slug, self.token, self.page_cap = repo, project, slug, token, page_cap
        self.extra_branches = extra_branches  # unrelated branches that push the wanted one to later pages
        b = f"/rest/api/1.0/projects/{project}/repos/{slug}"
        self.route("GET", b, self.get_repo)
        self.route("GET", b + "/branches/default", self.get_default)
        self.route("GET", b + "/branches", self.get_branches)
        self.route("GET", b + "/tags", self.get_tags)
        self.route("GET", b + "/commits/([^/]+)", self.get_commit)
        self.route("GET", b + "/files", self.get_files)
        self.route("GET", b + "/browse/?", self.get_browse_root)
        self.route("GET", b + "/browse/(.+)", self.get_browse)
        self.route("GET", b + "/raw/(.+)", self.get_raw)
        self.route("GET", b + "/archive", self.get_archive)
        self.archive = True  # False: a server before 5.1, which has no archive endpoint (a 404 there)
        scm = f"/scm/(?i:{re.escape(project)})/(?i:{re.escape(slug)})\\.git"
        self.route("GET", scm + "/info/refs", self.get_git_refs)
        self.route("POST", scm + "/git-upload-pack", self.post_upload_pack)
        # git over HTTP, as Bitbucket Data Center serves it: "v2+filter" (7.13+ on git 2.18+, the default),
        # "v2" (partial clones off: plugin.bitbucket-git.hosting.allow-filter=false), "v0" (before 5.13:
        # the v2 request is answered as protocol v0), "off" (no git over HTTP: 404), "garbage" (a broken answer)
        self.git = "v2+filter"
        self.tampered: dict[str, bytes] = {}  # blob id -> other bytes the server sends instead (raw and archive)

    def check_auth(self, request) -> Reply | None:
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return _server_error(401, "Authentication failed. Please check your credentials and try again.",
                                 "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException")
        return None

    def not_found(self, path: str) -> Reply:
        return _server_error(404, f"Project {path.split('/')[5] if path.count('/') > 5 else '?'} does not exist.",
                             "com.atlassian.bitbucket.project.NoSuchProjectException")

    def _page(self, values: list, query, key: str = "values") -> dict:
        start = int(query.get("start", 0))
        limit = min(int(query.get("limit", 25)), self.page_cap)
        chunk = values[start:start + limit]
        last = start + limit >= len(values)
        body = {"size": len(chunk), "limit": limit, "isLastPage": last, key: chunk, "start": start}
        if not last:
            body["nextPageStart"] = start + limit
        return body

    def _paged(self, values: list, query) -> Reply:
        return json_reply(200, self._page(values, query))

    def get_repo(self, query) -> Reply:
        return json_reply(200, {"slug": self.slug, "id": 1, "name": self.slug, "hierarchyId": "e3c939f9ef4a7fae272e",
                                "scmId": "git", "state": "AVAILABLE", "statusMessage": "Available", "forkable": True,
                                "project": {"key": self.project, "id": 1, "name": self.project, "public": False,
                                            "type": "NORMAL"}, "public": False, "archived": False})

    def _branch(self, name: str, sha: str, default: bool) -> dict:
        return {"id": f"refs/heads/{name}", "displayId": name, "type": "BRANCH", "latestCommit": sha,
                "latestChangeset": sha, "isDefault": default}

    def get_default(self, query) -> Reply:
        sha = self.repo.rev_parse(self.repo.default_branch)
        return json_reply(200, self._branch(self.repo.default_branch, sha, True))

    def get_branches(self, query) -> Reply:
        text = query.get("filterText", "")
        real = [self._branch(n, s, n == self.repo.default_branch) for n, s in sorted(self.repo.branches().items())]
        filler = [self._branch(f"{text}-other-{i}", "0" * 40, False) for i in range(self.extra_branches)]
        values = [b for b in filler + real if text in b["displayId"]]
        return self._paged(values, query)

    def get_tags(self, query) -> Reply:
        text = query.get("filterText", "")
        values = [{"id": f"refs/tags/{n}", "displayId": n, "type": "TAG", "latestCommit": s, "latestChangeset": s,
                   "hash": s} for n, s in sorted(self.repo.tags().items()) if text in n]
        return self._paged(values, query)

    def get_commit(self, query, ref) -> Reply:
        sha = self.repo.rev_parse(unquote(ref))
        if sha is None:
            return _server_error(404, f"Commit '{unquote(ref)}' does not exist in repository '{self.slug}'.",
                                 "com.atlassian.bitbucket.commit.NoSuchCommitException")
        return json_reply(200, {"id": sha, "displayId": sha[:11], "author": {"name": "test"}, "authorTimestamp": 0,
                                "message": "m", "parents": []})

    def get_files(self, query) -> Reply:
        sha = self.repo.rev_parse(query.get("at") or self.repo.default_branch)
        if sha is None:
            return _server_error(404, f"Commit '{query.get('at')}' does not exist in repository '{self.slug}'.",
                                 "com.atlassian.bitbucket.commit.NoSuchCommitException")
        return self._paged([e["path"] for e in self.repo.ls_tree(sha) if e["type"] == "blob"], query)

    def get_browse_root(self, query) -> Reply:
        return self.get_browse(query, "")

    def get_browse(self, query, path) -> Reply:
        """A folder: its direct children, paged like /files, each path relative to the folder. A file: its
        lines, paged the same way."""
        path = unquote(path).strip("/")
        at = query.get("at")
        sha = self.repo.rev_parse(at or self.repo.default_branch)
        if sha is None:
            return _server_error(404, f"Commit '{at}' does not exist in repository '{self.slug}'.",
                                 "com.atlassian.bitbucket.commit.NoSuchCommitException")
        entry = self.repo.entry_at(sha, path)
        if entry is not None and entry["type"] == "tree":
            children = []
            for e in self.repo.list_dir(sha, path) or []:
                child = {"path": _server_path(e["path"].rsplit("/", 1)[-1])}
                if e["type"] == "blob":
                    child.update(contentId=e["sha"], type="FILE", size=e["size"])
                else:
                    child.update(node=e["sha"], type="DIRECTORY" if e["type"] == "tree" else "SUBMODULE")
                children.append(child)
            return json_reply(200, {"path": _server_path(path), "revision": at or f"refs/heads/{self.repo.default_branch}",
                                    "children": self._page(children, query)})
        if entry is not None and entry["type"] == "blob":
            text = self.repo.cat(entry["sha"]).decode("utf-8", "replace")
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            return json_reply(200, self._page([{"text": line.rstrip("\r")} for line in lines], query, key="lines"))
        return _server_error(404, f"The path \"{path}\" does not exist at revision \"{sha}\"",
                             "com.atlassian.bitbucket.content.NoSuchPathException")

    def get_raw(self, query, path) -> Reply:
        sha = self.repo.rev_parse(query.get("at") or self.repo.default_branch)
        found = self.repo.blob_at(sha, unquote(path)) if sha else None
        if found is None:
            return _server_error(404, f"The path \"{unquote(path)}\" does not exist at revision \"{sha}\"",
                                 "com.atlassian.bitbucket.content.NoSuchPathException")
        return 200, {"Content-Type": "text/plain"}, self.tampered.get(found[0], found[1])

    def get_archive(self, query) -> Reply:
        """``archive?at=<sha>&format=tar&path=...`` (Bitbucket Server 5.1+): git archive of those paths. A path
        that matches nothing fails git archive ("pathspec did not match"), which the server answers with 404."""
        if not self.archive:
            return self.not_found("/archive")
        at = query.get("at") or self.repo.default_branch
        sha = self.repo.rev_parse(at)
        if sha is None:
            return _server_error(404, f"Commit '{at}' does not exist in repository '{self.slug}'.",
                                 "com.atlassian.bitbucket.commit.NoSuchCommitException")
        if query.get("format", "zip") != "tar":
            return _server_error(400, "this fake serves format=tar only", "java.lang.IllegalArgumentException")
        paths = query.lists.get("path", [])
        files = {}
        for path in paths:
            found = self.repo.blob_at(sha, path)
            if found is None:
                return _server_error(404, f"The path \"{path}\" does not exist at revision \"{sha}\"",
                                     "com.atlassian.bitbucket.content.NoSuchPathException")
            files[path] = self.tampered.get(found[0], found[1])
        if not paths:
            files = {e["path"]: self.repo.cat(e["sha"]) for e in self.repo.ls_tree(sha) if e["type"] == "blob"}
        return 200, {"Content-Type": "application/x-tar",
                     "Content-Disposition": f'attachment; filename="{self.slug}-{sha}.tar"'}, _tar(sha, files)


    # -- git over HTTP: the real git upload-pack on the fake's repository --------------------------------------
    def _upload_pack(self, body: bytes, protocol: str, advertise: bool) -> bytes:
        import os
        import subprocess

        if self.tampered:  # the blobs asked for answered with others (a server sending other bytes)
            for oid, data in self.tampered.items():
                other = self.repo.git("hash-object", "-w", "--stdin", input=data).strip()
                body = body.replace(f"want {oid}".encode(), f"want {other}".encode())
        filtering = "true" if self.git == "v2+filter" else "false"
        env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_SYSTEM="/dev/null")
        if protocol and self.git != "v0":
            env["GIT_PROTOCOL"] = protocol
        args = ["git", "-c", f"uploadpack.allowFilter={filtering}", "upload-pack", "--stateless-rpc"]
        if advertise:
            args.append("--advertise-refs")
        done = subprocess.run([*args, str(self.repo.path)], input=body, env=env, capture_output=True)
        return done.stdout

    def _git_off(self) -> Reply | None:
        if self.git == "off":
            return 404, {"Content-Type": "text/plain"}, "Repository not found"
        return None

    def get_git_refs(self, query) -> Reply:
        if (off := self._git_off()) or query.get("service") != "git-upload-pack":
            return off or (403, {"Content-Type": "text/plain"}, "dumb HTTP is not served")
        head = b"001e# service=git-upload-pack\n0000" if self.git == "v0" else b""
        return 200, {"Content-Type": "application/x-git-upload-pack-advertisement"}, \
            head + self._upload_pack(b"", "version=2", advertise=True)

    def post_upload_pack(self, query) -> Reply:
        if off := self._git_off():
            return off
        if self.git == "garbage":
            return 200, {"Content-Type": "application/x-git-upload-pack-result"}, b"0008NAK\n0010\x01PACKgarbage"
        body = self.last_body.encode() if isinstance(self.last_body, str) else (self.last_body or b"")
        protocol = self.last_headers.get("Git-Protocol", "")
        return 200, {"Content-Type": "application/x-git-upload-pack-result"}, self._upload_pack(body, protocol, False)


def _tar(sha: str, files: dict[str, bytes]) -> bytes:
    """A tar as git archive writes it: a pax global header with the commit id, then the files."""
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": sha}) as tar:
        folders: dict[str, None] = {}
        for path in files:
            parts = path.split("/")[:-1]
            folders.update({"/".join(parts[:i]) + "/": None for i in range(1, len(parts) + 1)})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _cloud_error(status: int, message: str) -> Reply:
    return json_reply(status, {"type": "error", "error": {"message": message}})


class FakeBitbucketCloud(FakeAPI):
    def __init__(self, rsps, repo: GitRepo, workspace: str = "acme", slug: str = "flows",
                 base: str = "http://127.0.0.1:8768", username: str | None = None, password: str | None = None,
                 token: str | None = None, page_cap: int = 10) -> None:
        super().__init__(base=base, rsps=rsps)
        self.repo, self.workspace, self.slug = repo, workspace, slug
        self.username, self.password, self.token, self.page_cap = username, password, token, page_cap
        b = f"/2.0/repositories/{workspace}/{slug}"
        self.route("GET", b, self.get_repo)
        self.route("GET", b + "/refs/(branches|tags)", self.get_refs)
        self.route("GET", b + "/commit/([^/]+)", self.get_commit)
        self.route("GET", b + "/src/([0-9a-f]{40})/", self.get_listing)
        self.route("GET", b + "/src/([0-9a-f]{40})/(.+)", self.get_src)

    def check_auth(self, request) -> Reply | None:
        header = request.headers.get("Authorization")
        if self.token is not None:
            ok = header == f"Bearer {self.token}"
        elif self.username is not None:
            ok = header == "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        else:
            ok = True
        return None if ok else (401, {"Content-Type": "text/plain"}, "")

    def not_found(self, path: str) -> Reply:
        return _cloud_error(404, f"Repository {self.workspace}/{path.split('/')[4] if path.count('/') > 3 else '?'} "
                                 "not found")

    def _page(self, values: list, query, path: str) -> Reply:
        pagelen = min(int(query.get("pagelen", 10)), self.page_cap)
        page = int(query.get("page", 1))
        chunk = values[(page - 1) * pagelen: page * pagelen]
        body = {"pagelen": pagelen, "values": chunk, "page": page, "size": len(values)}
        if page * pagelen < len(values):
            params = {k: v for k, v in query.items() if k != "page"}
            body["next"] = f"{self.base}{path}?{urlencode({**params, 'page': page + 1})}"
        return json_reply(200, body)

    def get_repo(self, query) -> Reply:
        full = f"{self.workspace}/{self.slug}"
        return json_reply(200, {"type": "repository", "full_name": full, "name": self.slug, "slug": self.slug,
                                "is_private": True, "scm": "git",
                                "mainbranch": {"type": "branch", "name": self.repo.default_branch},
                                "links": {"html": {"href": f"https://bitbucket.org/{full}"}},
                                "uuid": "{6a2b6c36-1111-2222-3333-444455556666}"})

    def get_refs(self, query, kind) -> Reply:
        refs = self.repo.branches() if kind == "branches" else self.repo.tags()
        wanted = re.match(r'name\s*=\s*"(.*)"', query.get("q", ""))
        values = [{"name": n, "type": "branch" if kind == "branches" else "tag",
                   "target": {"hash": s, "type": "commit", "date": "2026-11-01T00:00:00+00:00"},
                   "links": {"self": {"href": f"{self.base}/2.0/repositories/x/refs/{kind}/{n}"}}}
                  for n, s in sorted(refs.items()) if wanted is None or n == wanted.group(1)]
        return self._page(values, query, f"/2.0/repositories/{self.workspace}/{self.slug}/refs/{kind}")

    def get_commit(self, query, ref) -> Reply:
        sha = self.repo.rev_parse(unquote(ref))
        if sha is None:
            return _cloud_error(404, f"Commit not found: {unquote(ref)}")
        return json_reply(200, {"type": "commit", "hash": sha, "message": "m", "parents": []})

    def get_listing(self, query, sha) -> Reply:
        if self.repo.rev_parse(sha) is None:
            return _cloud_error(404, "Commit not found")
        return self._listing(query, sha, "")

    def get_src(self, query, sha, path) -> Reply:
        """A file's raw content; a folder (with or without the trailing slash): its listing."""
        if self.repo.rev_parse(sha) is None:
            return _cloud_error(404, "Commit not found")
        folder = unquote(path).strip("/")
        entry = self.repo.entry_at(sha, folder)
        if entry is not None and entry["type"] == "tree":
            return self._listing(query, sha, folder)
        found = self.repo.blob_at(sha, folder)
        if found is None:
            return _cloud_error(404, f"No such file or directory: {folder}")
        return 200, {"Content-Type": "text/plain"}, found[1]

    def _listing(self, query, sha: str, folder: str) -> Reply:
        """The folder's direct entries (max_depth defaults to 1), or with max_depth=N everything up to N
        levels below it; paths stay relative to the repository root."""
        max_depth = max(1, int(query.get("max_depth", 1)))
        base_depth = folder.count("/") + 1 if folder else 0
        entries = [e for e in self.repo.list_dir(sha, folder, recursive=max_depth > 1) or []
                   if e["path"].count("/") + 1 - base_depth <= max_depth]
        where = f"{quote(folder)}/" if folder else ""
        return self._page([self._src_entry(e, sha) for e in entries], query,
                          f"/2.0/repositories/{self.workspace}/{self.slug}/src/{sha}/{where}")

    def _src_entry(self, e: dict, sha: str) -> dict:
        api = f"{self.base}/2.0/repositories/{self.workspace}/{self.slug}"
        path = quote(e["path"])
        commit = {"type": "commit", "hash": sha,
                  "links": {"self": {"href": f"{api}/commit/{sha}"},
                            "html": {"href": f"https://bitbucket.org/{self.workspace}/{self.slug}/commits/{sha}"}}}
        if e["type"] != "blob":  # folders (and submodules, as before)
            href = f"{api}/src/{sha}/{path}/"
            return {"path": e["path"], "type": "commit_directory", "commit": commit,
                    "links": {"self": {"href": href}, "meta": {"href": href + "?format=meta"}}}
        href = f"{api}/src/{sha}/{path}"
        attributes = {"100755": ["executable"], "120000": ["link"]}.get(e["mode"], [])
        return {"path": e["path"], "type": "commit_file", "commit": commit, "size": e["size"],
                "attributes": attributes, "escaped_path": path, "mimetype": None,
                "links": {"self": {"href": href}, "meta": {"href": href + "?format=meta"},
                          "history": {"href": f"{api}/filehistory/{sha}/{path}"}}}
