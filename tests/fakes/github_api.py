"""A fake GitHub REST API (v3) answering from a real git repository, shaped as GitHub answers.

Shapes follow docs.github.com/rest: repos, commits, git/trees (recursive), git/blobs, contents (a
file, or a directory's direct entries, at most 1,000 of them), and the error bodies GitHub sends
for 401, 403 (rate limit), 404 and 422.
"""

from __future__ import annotations

import base64
import textwrap
from urllib.parse import quote, unquote

from .apis import FakeAPI, Reply, json_reply, rate_limit_headers
from .gitrepo import GitRepo

DOCS = "https://docs.github.com/rest"
DIRECTORY_LIMIT = 1000  # "This API has an upper limit of 1,000 files for a directory": the rest are left out


class FakeGitHub(FakeAPI):
    def __init__(self, rsps, repo: GitRepo, full_name: str = "acme/flows",
                 base: str = "http://127.0.0.1:8765/api/v3", token: str | None = None) -> None:
        super().__init__(base=base, rsps=rsps)
        self.repo, self.full_name, self.token = repo, full_name, token
        self.graphql = True  # False: a server without the GraphQL API (an old GitHub Enterprise)
        self.tampered: dict[str, bytes] = {}  # blob id -> other bytes, sent with their own id (a consistent lie)
        self.corrupted: dict[str, bytes] = {}  # blob id -> other bytes, sent under the real id (a broken proxy)
        r = "/repos/" + full_name
        self.route("GET", r, self.get_repo)
        self.route("GET", r + "/commits/(.+)", self.get_commit)
        self.route("GET", r + "/git/trees/([^/]+)", self.get_tree)
        self.route("GET", r + "/git/blobs/([0-9a-f]{40})", self.get_blob)
        self.route("GET", r + "/contents/?", self.get_root_contents)
        self.route("GET", r + "/contents/(.+)", self.get_contents)
        # GraphQL lives beside the REST root: https://api.github.com/graphql, https://HOST/api/graphql (GHES)
        root = self.api[: -len("/v3")] if self.api.endswith("/api/v3") else self.api
        self.graphql_url = root + "/graphql"
        self.rsps.add_callback("POST", self.graphql_url, callback=self._dispatch)

    @property
    def api(self) -> str:
        return self.base.rstrip("/")

    def _dispatch(self, request) -> Reply:
        if request.method == "POST" and request.url.split("?")[0] == self.graphql_url:
            return self.post_graphql(request)
        return super()._dispatch(request)

    def post_graphql(self, request) -> Reply:
        """GitHub's GraphQL API for the one shape gitflows sends: ``repository(owner:, name:)`` with aliased
        ``object(expression: $var)`` fields. Tokens only (no anonymous GraphQL on GitHub); a missing
        repository is ``data.repository: null`` with a NOT_FOUND error; a missing object is null."""
        import json
        import re

        self.requests.append(("POST", "/graphql"))
        self.auth_headers.append(request.headers.get("Authorization"))
        if not self.graphql:
            return self.not_found("/graphql")
        for failure in self.failures:
            if failure.times > 0 and failure.pattern.search("/graphql"):
                failure.times -= 1
                return failure.reply
        header = request.headers.get("Authorization")
        if not header:
            return json_reply(401, {"message": "This endpoint requires you to be authenticated.",
                                    "documentation_url": "https://docs.github.com/graphql/guides/forming-calls-with-"
                                                         "graphql#authenticating-with-graphql"})
        denied = self.check_auth(request)
        if denied:
            return denied
        body = request.body if isinstance(request.body, (bytes, str)) else b"{}"
        payload = json.loads(body)
        variables = payload.get("variables") or {}
        query = payload.get("query", "")
        if f"{variables.get('owner')}/{variables.get('name')}" != self.full_name:
            return json_reply(200, {"data": {"repository": None}, "errors": [{
                "type": "NOT_FOUND", "path": ["repository"], "locations": [{"line": 1, "column": 3}],
                "message": f"Could not resolve to a Repository with the name "
                           f"'{variables.get('owner')}/{variables.get('name')}'."}]})
        repository = {}
        for alias, var in re.findall(r"(\w+): object\(expression: \$(\w+)\)", query):
            repository[alias] = self._graphql_object(str(variables.get(var, "")))
        return json_reply(200, {"data": {"repository": repository}}, rate_limit_headers())

    def _graphql_object(self, expression: str) -> dict | None:
        rev, _, path = expression.partition(":")
        sha = self.repo.rev_parse(rev)
        entry = self.repo.entry_at(sha, path) if sha else None
        if entry is None:
            return None
        if entry["type"] == "tree":
            return {"__typename": "Tree"}
        if entry["type"] != "blob":
            return {"__typename": "Commit"}
        data = self.tampered.get(entry["sha"]) or self.corrupted.get(entry["sha"]) or self.repo.cat(entry["sha"])
        try:
            text = data.decode("utf-8")
            binary = b"\x00" in data
        except UnicodeDecodeError:
            text, binary = None, True
        limit = 512 * 1024  # GitHub truncates text it returns beyond this
        oid = entry["sha"] if entry["sha"] not in self.tampered else _blob_id(data)  # a lying server lies throughout
        return {"__typename": "Blob", "oid": oid, "byteSize": len(data), "isBinary": binary,
                "isTruncated": not binary and len(data) > limit,
                "text": None if binary else (text[:limit] if len(data) > limit else text)}

    def check_auth(self, request) -> Reply | None:
        if self.token is None:
            return None
        header = request.headers.get("Authorization")
        if header not in (f"token {self.token}", f"Bearer {self.token}"):
            return json_reply(401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"})
        return None

    def not_found(self, path: str) -> Reply:
        return json_reply(404, {"message": "Not Found", "documentation_url": DOCS + "/repos/repos#get-a-repository",
                                "status": "404"}, rate_limit_headers())

    def get_repo(self, query) -> Reply:
        owner, name = self.full_name.split("/")
        return json_reply(200, {
            "id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": name, "full_name": self.full_name,
            "private": True, "owner": {"login": owner, "id": 1, "node_id": "MDQ6VXNlcjE=", "type": "Organization",
                                       "url": f"{self.api}/users/{owner}", "site_admin": False},
            "html_url": f"https://github.com/{self.full_name}", "description": None, "fork": False,
            "url": f"{self.api}/repos/{self.full_name}", "default_branch": self.repo.default_branch,
            "visibility": "private", "archived": False, "disabled": False,
            "created_at": "2020-01-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z",
            "pushed_at": "2026-11-01T00:00:00Z", "size": 108, "open_issues_count": 0, "topics": [],
        }, rate_limit_headers())

    def get_commit(self, query, ref) -> Reply:
        ref = unquote(ref)
        sha = self.repo.rev_parse(ref)
        if sha is None or (len(ref) == 40 and not sha.startswith(ref)):
            return json_reply(422, {"message": f"No commit found for SHA: {ref}",
                                    "documentation_url": DOCS + "/commits/commits#get-a-commit", "status": "422"})
        info = self.repo.commit_info(sha)
        url = f"{self.api}/repos/{self.full_name}/commits/{sha}"
        person = lambda n, e, d: {"name": n, "email": e, "date": d}  # noqa: E731
        return json_reply(200, {
            "sha": sha, "node_id": "C_kwDOAAABBB", "url": url, "html_url": f"https://github.com/{self.full_name}/commit/{sha}",
            "comments_url": url + "/comments",
            "commit": {"url": f"{self.api}/repos/{self.full_name}/git/commits/{sha}",
                       "author": person(info["author_name"], info["author_email"], info["author_date"]),
                       "committer": person(info["committer_name"], info["committer_email"], info["committer_date"]),
                       "message": info["message"],
                       "tree": {"url": f"{self.api}/repos/{self.full_name}/git/trees/{info['tree']}", "sha": info["tree"]},
                       "comment_count": 0,
                       "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None}},
            "author": None, "committer": None,
            "parents": [{"url": f"{self.api}/repos/{self.full_name}/commits/{p}", "sha": p,
                         "html_url": f"https://github.com/{self.full_name}/commit/{p}"} for p in info["parents"]],
            "stats": {"additions": 1, "deletions": 0, "total": 1}, "files": [],
        }, rate_limit_headers())

    def get_tree(self, query, sha) -> Reply:
        commit = self.repo.rev_parse(sha)
        if commit is None:
            return json_reply(404, {"message": "Not Found", "documentation_url": DOCS + "/git/trees#get-a-tree",
                                    "status": "404"})
        info = self.repo.commit_info(commit)
        entries = []
        for e in self.repo.ls_tree(commit):
            if query.get("recursive") is None and "/" in e["path"]:
                continue
            item = {"path": e["path"], "mode": e["mode"], "type": e["type"], "sha": e["sha"],
                    "url": f"{self.api}/repos/{self.full_name}/git/{e['type']}s/{e['sha']}"}
            if e["type"] == "blob":
                item["size"] = e["size"]
            entries.append(item)
        return json_reply(200, {"sha": info["tree"], "url": f"{self.api}/repos/{self.full_name}/git/trees/{info['tree']}",
                                "tree": entries, "truncated": False}, rate_limit_headers())

    def get_blob(self, query, oid) -> Reply:
        try:
            data = self.corrupted.get(oid) or self.repo.cat(oid)
        except Exception:
            return self.not_found("")
        return json_reply(200, {"sha": oid, "node_id": "B_kwDOAAA", "size": len(data),
                                "url": f"{self.api}/repos/{self.full_name}/git/blobs/{oid}",
                                "content": _b64(data), "encoding": "base64"}, rate_limit_headers())

    def _contents_not_found(self) -> Reply:
        return json_reply(404, {"message": "Not Found", "documentation_url": DOCS + "/repos/contents#get-repository-content",
                                "status": "404"})

    def get_root_contents(self, query) -> Reply:
        return self.get_contents(query, "")

    def get_contents(self, query, path) -> Reply:
        path = unquote(path).strip("/")
        ref = query.get("ref") or self.repo.default_branch
        sha = self.repo.rev_parse(ref)
        if sha is None:
            return self._contents_not_found()
        listing = self.repo.list_dir(sha, path)
        if listing is not None:
            return json_reply(200, [self._dir_entry(e, ref) for e in listing[:DIRECTORY_LIMIT]], rate_limit_headers())
        found = self.repo.blob_at(sha, path) if path else None
        if found is None:
            return self._contents_not_found()
        oid, data = found
        html = f"https://github.com/{self.full_name}/blob/{sha}/{path}"
        git_url = f"{self.api}/repos/{self.full_name}/git/blobs/{oid}"
        self_url = f"{self.api}/repos/{self.full_name}/contents/{path}?ref={sha}"
        return json_reply(200, {"type": "file", "encoding": "base64", "size": len(data), "name": path.rsplit("/", 1)[-1],
                                "path": path, "content": _b64(data), "sha": oid, "url": self_url, "git_url": git_url,
                                "html_url": html, "download_url": None,
                                "_links": {"self": self_url, "git": git_url, "html": html}}, rate_limit_headers())

    def _dir_entry(self, e: dict, ref: str) -> dict:
        """One entry of a directory listing. Submodules are typed "file" there (GitHub keeps that for
        backwards compatibility), with size 0 and no download URL; symlinks are "symlink"."""
        path, ref_q = quote(e["path"]), quote(ref, safe="")
        kind = {"tree": "dir", "commit": "file"}.get(e["type"], "symlink" if e["mode"] == "120000" else "file")
        is_blob = e["type"] == "blob"
        self_url = f"{self.api}/repos/{self.full_name}/contents/{path}?ref={ref_q}"
        git_url = f"{self.api}/repos/{self.full_name}/git/{'blobs' if is_blob else 'trees'}/{e['sha']}"
        html = f"https://github.com/{self.full_name}/{'blob' if is_blob else 'tree'}/{quote(ref)}/{path}"
        download = f"https://raw.githubusercontent.com/{self.full_name}/{quote(ref)}/{path}" if is_blob else None
        return {"name": e["path"].rsplit("/", 1)[-1], "path": e["path"], "sha": e["sha"],
                "size": e["size"] if is_blob else 0, "url": self_url, "html_url": html, "git_url": git_url,
                "download_url": download, "type": kind, "_links": {"self": self_url, "git": git_url, "html": html}}


def _b64(data: bytes) -> str:
    # GitHub wraps base64 content at 60 characters with newlines
    return "\n".join(textwrap.wrap(base64.b64encode(data).decode(), 60)) + "\n"


def _blob_id(data: bytes) -> str:
    import hashlib

    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()
