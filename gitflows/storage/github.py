"""``GitHub``: a flow script in a GitHub (or GitHub Enterprise) repository."""

from __future__ import annotations

from typing import Any

from gitflows.hosts import Host
from gitflows.hosts.github import GitHubHost
from gitflows.storage.repo import RepoStorage, token_getter


class GitHub(RepoStorage):
    """``GitHub(repo, path, ref=None, access_token_secret=None, base_url=None, **kwargs)``.

    ``repo`` is ``owner/name``; ``ref`` a branch, tag or commit SHA (default: the repository's
    default branch); ``access_token_secret`` names the secret holding a token (default name
    ``GITHUB_ACCESS_TOKEN``; without it, public repositories are read anonymously);
    ``base_url`` the API root for GitHub Enterprise or a local server (``http://127.0.0.1:8080``).
    """

    repo_is_remote_path = True

    type_name = "GitHub"
    fields = ("repo", "path", "ref", "access_token_secret", "base_url")
    default_secret = "GITHUB_ACCESS_TOKEN"

    def __init__(self, repo: str, path: str | None = None, ref: str | None = None,
                 access_token_secret: str | None = None, base_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repo, self.path, self.ref = repo, path, ref
        self.access_token_secret, self.base_url = access_token_secret, base_url

    def make_host(self) -> Host:
        name = self.access_token_secret or self.default_secret
        return GitHubHost(self.repo, token_getter(self.access_token_secret, self.default_secret), self.base_url,
                          secret_name=name)
