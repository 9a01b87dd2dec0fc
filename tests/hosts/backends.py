"""The API hosts under one description, so the same contract tests run against each fake."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from gitflows.storage.base import Storage
from gitflows.storage.bitbucket import Bitbucket
from gitflows.storage.github import GitHub
from gitflows.storage.gitlab import GitLab

from ..fakes.apis import FakeAPI, rate_limit_headers
from ..fakes.bitbucket_api import FakeBitbucketCloud, FakeBitbucketServer
from ..fakes.github_api import FakeGitHub
from ..fakes.gitlab_api import FakeGitLab
from .conftest import TOKEN

# bitbucket-server reads over git smart HTTP (Bitbucket Data Center 7.13+); bitbucket-server-rest is a server
# whose git over HTTP cannot serve (off, older, partial clones turned off): the REST API answers everything
NAMES = ["github", "gitlab", "bitbucket-server", "bitbucket-server-rest", "bitbucket-cloud"]


@dataclass
class Backend:
    name: str
    fake: FakeAPI
    make: Callable[..., Storage]
    secret_env: str
    resolve: str  # regex of the request paths that resolve a ref
    listing: str  # ... that list a folder of a commit, or read a level of imports at once (GraphQL)
    read: str  # ... that read one file
    rate_limited: tuple[int, dict, object]
    server_error: tuple[int, object]
    tamper: Callable[[str], tuple[int, object]]  # served instead of a file's content

    def reads(self) -> int:
        import re

        return sum(1 for _, p in self.fake.requests if re.search(self.read, p.split("?")[0]))

    def resolves(self) -> int:
        import re

        return sum(1 for _, p in self.fake.requests if re.search(self.resolve, p.split("?")[0]))


def make_backend(name: str, rsps, source, monkeypatch) -> Backend:
    far = int(time.time() + 3600)
    if name == "github":
        base = "http://127.0.0.1:8765/api/v3"
        monkeypatch.setenv("GH_TOKEN", TOKEN)

        def make(repo="flows", path="flows/etl.py", ref=None):
            return GitHub(repo=f"acme/{repo}", path=path, ref=ref, access_token_secret="GH_TOKEN", base_url=base)

        def tamper(oid):
            return 200, {"sha": oid, "size": 5, "content": base64.b64encode(b"evil\n").decode(), "encoding": "base64",
                         "url": "x", "node_id": "x"}

        return Backend(name, FakeGitHub(rsps, source, base=base, token=TOKEN), make, "GH_TOKEN",
                       r"/commits/", r"^/graphql$", r"(?:/contents/(?=.*\.py$)|/git/blobs/)",
                       (403, {**rate_limit_headers(remaining=0), "X-RateLimit-Reset": str(far)},
                        {"message": "API rate limit exceeded for user ID 1.", "status": "403"}),
                       (500, {"message": "Server Error"}), tamper)
    if name == "gitlab":
        base = "http://127.0.0.1:8766"
        monkeypatch.setenv("GL_TOKEN", TOKEN)

        def make(repo="flows", path="flows/etl.py", ref=None):
            return GitLab(repo=f"acme/{repo}", host=base, path=path, ref=ref, access_token_secret="GL_TOKEN")

        return Backend(name, FakeGitLab(rsps, source, base=base, token=TOKEN, page_cap=3), make, "GL_TOKEN",
                       r"/repository/commits/", r"^/api/graphql$", r"(?:/repository/files/|/repository/blobs/)",
                       (429, {"Retry-After": "3600", "RateLimit-Limit": "600", "RateLimit-Remaining": "0",
                              "RateLimit-Reset": str(far)}, "Retry later"),
                       (500, {"message": "500 Internal Server Error"}), lambda oid: (200, "evil\n"))
    if name in ("bitbucket-server", "bitbucket-server-rest"):
        base = "http://127.0.0.1:8767"
        monkeypatch.setenv("BB_TOKEN", TOKEN)

        def make(repo="flows", path="flows/etl.py", ref=None):
            return Bitbucket(project="ACME", repo=repo, host=base, path=path, ref=ref, access_token_secret="BB_TOKEN")

        fake = FakeBitbucketServer(rsps, source, base=base, token=TOKEN, page_cap=2, extra_branches=5)
        git = name == "bitbucket-server"
        if not git:
            fake.git = "off"
        return Backend(name, fake, make, "BB_TOKEN", r"/(branches|tags|commits)",
                       r"(/browse(/|$)|/git-upload-pack$)" if git else r"/browse(/|$)",
                       r"(/raw/|/git-upload-pack$)" if git else r"/raw/",
                       (429, {"Retry-After": "3600", "X-RateLimit-Limit": "60", "X-RateLimit-Interval-Seconds": "1"},
                        {"errors": [{"context": None, "message": "Rate limit exceeded",
                                     "exceptionName": "com.atlassian.bitbucket.throttle.ThrottledException"}]}),
                       (500, {"errors": [{"context": None, "message": "An error occurred", "exceptionName": None}]}),
                       lambda oid: (200, "evil\n"))
    if name == "bitbucket-cloud":
        base = "http://127.0.0.1:8768"
        monkeypatch.setenv("BB_USER", "robot-user")
        monkeypatch.setenv("BB_APP_PASSWORD", TOKEN)

        def make(repo="flows", path="flows/etl.py", ref=None):
            return Bitbucket(project="ACME", repo=repo, workspace="acme", host=base, path=path, ref=ref,
                             cloud_username_secret="BB_USER", cloud_app_password_secret="BB_APP_PASSWORD")

        return Backend(name, FakeBitbucketCloud(rsps, source, base=base, username="robot-user", password=TOKEN,
                                                page_cap=3),
                       make, "BB_APP_PASSWORD", r"/(refs/|commit/)", r"/src/[0-9a-f]{40}/(.*/)?$",
                       r"/src/[0-9a-f]{40}/(?=.*[^/]$)",
                       (429, {"Retry-After": "3600"}, {"type": "error", "error": {"message": "Rate limit exceeded"}}),
                       (500, {"type": "error", "error": {"message": "Something went wrong"}}),
                       lambda oid: (200, "evil\n"))
    raise ValueError(name)


def body(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)
