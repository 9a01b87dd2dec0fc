"""A fake GitLab REST API (v4) answering from a real git repository, shaped as GitLab answers.

Shapes follow docs.gitlab.com/ee/api: projects, repository/commits, repository/tree (the folder
`path`, its direct entries or with `recursive` all below it; offset pagination with Link and X-*
headers), repository/blobs/:sha/raw, repository/files/:path/raw, and GitLab's error bodies
({"message": "404 Project Not Found"}, "404 Tree Not Found", "401 Unauthorized", 429).
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from .apis import FakeAPI, Reply, json_reply
from .gitrepo import GitRepo


class FakeGitLab(FakeAPI):
    def __init__(self, rsps, repo: GitRepo, full_path: str = "acme/flows", project_id: int = 3,
                 base: str = "http://127.0.0.1:8766", token: str | None = None, page_cap: int = 100) -> None:
        super().__init__(base=base, rsps=rsps)
        self.repo, self.full_path, self.project_id, self.token, self.page_cap = repo, full_path, project_id, token, page_cap
        self.tampered: dict[str, bytes] = {}  # blob id -> what the "server" sends instead
        self.graphql = True  # False: an instance without the GraphQL API
        ids = f"(?:{quote(full_path, safe='')}|{project_id})"
        p = "/api/v4/projects/" + ids
        self.route("GET", p, self.get_project)
        self.route("GET", p + "/repository/commits/([^/]+)", self.get_commit)
        self.route("GET", p + "/repository/tree", self.get_tree)
        self.route("GET", p + "/repository/blobs/([0-9a-f]{40})/raw", self.get_raw_blob)
        self.route("GET", p + "/repository/files/([^/]+)/raw", self.get_raw_file)
        self.route("GET", p + "/repository/files/([^/]+)", self.get_file)

    def _dispatch(self, request) -> Reply:
        if request.method == "POST" and request.url.split("?")[0].rstrip("/") == self.base.rstrip("/") + "/api/graphql":
            return self.post_graphql(request)
        return super()._dispatch(request)

    def post_graphql(self, request) -> Reply:
        """GitLab's GraphQL API for the shape gitflows sends: ``project(fullPath:) { repository { blobs(ref:,
        paths:) { nodes { path oid size rawTextBlob } } } }``. A project the caller cannot see is null; paths
        that do not exist are simply not in ``nodes``; ``size`` is a BigInt, serialized as a string."""
        import json

        self.requests.append(("POST", "/api/graphql"))
        self.auth_headers.append(request.headers.get("PRIVATE-TOKEN"))
        if not self.graphql:
            return json_reply(404, {"message": "404 Not Found"})
        for failure in self.failures:
            if failure.times > 0 and failure.pattern.search("/api/graphql"):
                failure.times -= 1
                return failure.reply
        payload = json.loads(request.body or b"{}")
        variables = payload.get("variables") or {}
        token = request.headers.get("PRIVATE-TOKEN")
        if self.token is not None and token is not None and token != self.token:
            return json_reply(401, {"errors": [{"message": "Invalid token"}]})
        if variables.get("project") != self.full_path or (self.token is not None and token != self.token):
            return json_reply(200, {"data": {"project": None}})
        sha = self.repo.rev_parse(str(variables.get("ref")))
        nodes = []
        for path in variables.get("paths") or []:
            found = self.repo.blob_at(sha, path) if sha else None
            if found is None:
                continue
            oid, data = found
            if oid in self.tampered:  # a lying server lies throughout: content and id agree
                import hashlib

                data = self.tampered[oid]
                oid = hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()
            try:
                text = None if b"\x00" in data else data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            nodes.append({"path": path, "oid": oid, "size": str(len(data)), "rawTextBlob": text})
        return json_reply(200, {"data": {"project": {"repository": {"blobs": {"nodes": nodes}}}}})

    def check_auth(self, request) -> Reply | None:
        if self.token is not None and request.headers.get("PRIVATE-TOKEN") != self.token:
            return json_reply(401, {"message": "401 Unauthorized"})
        return None

    def not_found(self, path: str) -> Reply:
        return json_reply(404, {"message": "404 Project Not Found"})

    def _web(self) -> str:
        return f"{self.base}/{self.full_path}"

    def get_project(self, query) -> Reply:
        ns, _, name = self.full_path.rpartition("/")
        return json_reply(200, {
            "id": self.project_id, "description": None, "name": name, "name_with_namespace": f"{ns} / {name}",
            "path": name, "path_with_namespace": self.full_path, "created_at": "2020-01-01T00:00:00.000Z",
            "default_branch": self.repo.default_branch, "tag_list": [], "topics": [],
            "ssh_url_to_repo": f"git@127.0.0.1:{self.full_path}.git", "http_url_to_repo": self._web() + ".git",
            "web_url": self._web(), "readme_url": None, "forks_count": 0, "avatar_url": None, "star_count": 0,
            "last_activity_at": "2026-11-01T00:00:00.000Z",
            "namespace": {"id": 2, "name": ns, "path": ns.rsplit("/", 1)[-1], "kind": "group", "full_path": ns,
                          "parent_id": None, "avatar_url": None, "web_url": f"{self.base}/groups/{ns}"},
            "visibility": "private", "empty_repo": False, "archived": False,
        })

    def get_commit(self, query, ref) -> Reply:
        ref = unquote(ref)
        sha = self.repo.rev_parse(ref)
        if sha is None or (len(ref) == 40 and sha != ref):
            return json_reply(404, {"message": "404 Commit Not Found"})
        info = self.repo.commit_info(sha)
        return json_reply(200, {
            "id": sha, "short_id": sha[:8], "created_at": info["committer_date"], "parent_ids": info["parents"],
            "title": info["message"].splitlines()[0] if info["message"] else "", "message": info["message"],
            "author_name": info["author_name"], "author_email": info["author_email"],
            "authored_date": info["author_date"], "committer_name": info["committer_name"],
            "committer_email": info["committer_email"], "committed_date": info["committer_date"],
            "trailers": {}, "extended_trailers": {}, "web_url": f"{self._web()}/-/commit/{sha}",
            "stats": {"additions": 1, "deletions": 0, "total": 1}, "status": None, "project_id": self.project_id,
            "last_pipeline": None,
        })

    def get_tree(self, query) -> Reply:
        sha = self.repo.rev_parse(query.get("ref") or self.repo.default_branch)
        if sha is None:
            return json_reply(404, {"message": "404 Tree Not Found"})
        recursive = query.get("recursive", "false").lower() == "true"
        folder = query.get("path", "").strip("/")
        listing = self.repo.list_dir(sha, folder, recursive)
        if listing is None:  # no such folder at that commit (or the path is a file)
            return json_reply(404, {"message": "404 Tree Not Found"})
        # GitLab's Tree#sorted_entries: trees, then blobs, then submodules, each in git's order
        listing = sorted(listing, key=lambda e: ("tree", "blob", "commit").index(e["type"]))
        entries = [{"id": e["sha"], "name": e["path"].rsplit("/", 1)[-1], "type": e["type"], "path": e["path"],
                    "mode": e["mode"]} for e in listing]
        per_page = min(int(query.get("per_page", 20)), self.page_cap)
        page = int(query.get("page", 1))
        pages = max(1, -(-len(entries) // per_page))
        chunk = entries[(page - 1) * per_page: page * per_page]
        url = f"{self.base}/api/v4/projects/{self.project_id}/repository/tree"

        def link(n: int) -> str:
            where = f"&path={quote(folder, safe='')}" if folder else ""
            return (f"{url}?id={self.project_id}&page={n}{where}&per_page={per_page}"
                    f"&recursive={str(recursive).lower()}&ref={sha}")

        links = [f'<{link(page + 1)}>; rel="next"'] if page < pages else []
        links += [f'<{link(1)}>; rel="first"', f'<{link(pages)}>; rel="last"']
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(entries)),
                   "X-Total-Pages": str(pages), "X-Next-Page": str(page + 1) if page < pages else "",
                   "X-Prev-Page": str(page - 1) if page > 1 else "", "Link": ", ".join(links)}
        return json_reply(200, chunk, headers)

    def get_raw_blob(self, query, oid) -> Reply:
        try:
            data = self.repo.cat(oid)
        except Exception:
            return json_reply(404, {"message": "404 Blob Not Found"})
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, data

    def get_file(self, query, path) -> Reply:
        """``GET /projects/:id/repository/files/:file_path?ref=``: the file as JSON, base64, with its blob id."""
        import base64
        import hashlib

        ref = query.get("ref")
        if not ref:
            return json_reply(400, {"error": "ref is missing, ref is empty"})
        sha = self.repo.rev_parse(ref)
        found = self.repo.blob_at(sha, unquote(path)) if sha else None
        if found is None:
            return json_reply(404, {"message": "404 File Not Found"})
        oid, data = found
        name = unquote(path)
        return json_reply(200, {
            "file_name": name.rsplit("/", 1)[-1], "file_path": name, "size": len(data), "encoding": "base64",
            "content": base64.b64encode(data).decode(), "content_sha256": hashlib.sha256(data).hexdigest(),
            "ref": ref, "blob_id": oid, "commit_id": sha, "last_commit_id": sha, "execute_filemode": False})

    def get_raw_file(self, query, path) -> Reply:
        sha = self.repo.rev_parse(query.get("ref") or self.repo.default_branch)
        found = self.repo.blob_at(sha, unquote(path)) if sha else None
        if found is None:
            return json_reply(404, {"message": "404 File Not Found"})
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, found[1]
