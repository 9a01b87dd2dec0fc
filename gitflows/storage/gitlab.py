"""``GitLab``: a flow script in a GitLab project (gitlab.com or self-managed)."""

from __future__ import annotations

from typing import Any

from gitflows.hosts import Host
from gitflows.hosts.gitlab import GitLabHost
from gitflows.storage.repo import RepoStorage, token_getter


class GitLab(RepoStorage):
    """``GitLab(repo, host=None, path=None, ref=None, access_token_secret=None, **kwargs)``.

    ``repo`` is ``namespace/project`` (nested groups too) or a numeric project id; ``host`` the
    server for self-managed GitLab (``gitlab.example.com`` or a full URL such as
    ``http://127.0.0.1:8080``); ``ref`` a branch, tag or commit (default: the project's default
    branch); ``access_token_secret`` names the secret holding a token (default name
    ``GITLAB_ACCESS_TOKEN``), sent in the ``PRIVATE-TOKEN`` header.
    """

    repo_is_remote_path = True

    type_name = "GitLab"
    fields = ("repo", "host", "path", "ref", "access_token_secret")
    default_secret = "GITLAB_ACCESS_TOKEN"

    def __init__(self, repo: str | int, host: str | None = None, path: str | None = None, ref: str | None = None,
                 access_token_secret: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repo, self.host, self.path, self.ref = repo, host, path, ref
        self.access_token_secret = access_token_secret

    def make_host(self) -> Host:
        name = self.access_token_secret or self.default_secret
        return GitLabHost(self.repo, token_getter(self.access_token_secret, self.default_secret), self.host,
                          secret_name=name)
