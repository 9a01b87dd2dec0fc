"""``Git``: a flow script in any git repository, fetched with dulwich (see gitflows.hosts.git)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from gitflows.errors import ConfigurationError
from gitflows.flow import Flow
from gitflows.hosts import Host
from gitflows.hosts.git import Credentials, GitHost, split_url
from gitflows.redact import forget_secret, register_secret
from gitflows.secrets import resolve_secret
from gitflows.storage.repo import RepoStorage


def token_credentials(host: str, token: str, username: str | None, format_access_token: bool) -> Credentials:
    """The Authorization a host expects for an access token (Prefect 1.4's rules, sent as a header)."""
    if not format_access_token:
        user, sep, password = token.partition(":")  # the token is used as given: "user:password" or "token"
        return Credentials(user, password if sep else "")
    if username:
        return Credentials(username, token)
    host = host.lower()
    if "bitbucket.org" in host:
        return Credentials("x-token-auth", token)
    if "bitbucket" in host:
        return Credentials(bearer=token)
    if "gitlab" in host:
        return Credentials("oauth2", token)
    if "github" in host:
        return Credentials("x-access-token", token)
    return Credentials("git", token)


class Git(RepoStorage):
    """``Git(flow_path, repo, repo_host="github.com", flow_name=None, git_token_secret_name=None,
    git_token_username=None, branch_name=None, tag=None, commit=None, clone_depth=1, use_ssh=False,
    format_access_token=True, git_clone_url_secret_name=None, **kwargs)``.

    The ref is ``commit``, else ``tag``, else ``branch_name``, else the remote's default branch.
    ``git_clone_url_secret_name`` names a secret holding the whole clone URL (any server, http(s),
    git or ssh); credentials inside it are moved into a header. ``clone_depth`` is accepted for
    compatibility: gitflows always fetches exactly one commit.
    """

    type_name = "Git"
    fields = ("flow_path", "repo", "repo_host", "flow_name", "git_token_secret_name", "git_token_username",
              "branch_name", "tag", "commit", "clone_depth", "use_ssh", "format_access_token",
              "git_clone_url_secret_name")
    path_field = "flow_path"

    def __init__(self, flow_path: str, repo: str, repo_host: str = "github.com", flow_name: str | None = None,
                 git_token_secret_name: str | None = None, git_token_username: str | None = None,
                 branch_name: str | None = None, tag: str | None = None, commit: str | None = None,
                 clone_depth: int = 1, use_ssh: bool = False, format_access_token: bool = True,
                 git_clone_url_secret_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if sum(x is not None for x in (branch_name, tag, commit)) > 1 and not (commit and (branch_name or tag)):
            raise ConfigurationError("Git storage: give branch_name or tag, not both")
        if use_ssh and git_token_secret_name:
            raise ConfigurationError("Git storage: use_ssh uses your SSH keys; git_token_secret_name is for HTTPS")
        self.flow_path, self.repo, self.repo_host, self.flow_name = flow_path, repo, repo_host, flow_name
        self.git_token_secret_name, self.git_token_username = git_token_secret_name, git_token_username
        self.branch_name, self.tag, self.commit = branch_name, tag, commit
        self.clone_depth, self.use_ssh, self.format_access_token = clone_depth, use_ssh, format_access_token
        self.git_clone_url_secret_name = git_clone_url_secret_name

    @property
    def requested_ref(self) -> str | None:
        return self.commit or self.tag or self.branch_name

    def _url(self) -> tuple[str, Credentials | None]:
        if self.git_clone_url_secret_name:
            secret_url = resolve_secret(self.git_clone_url_secret_name)
            url, creds = split_url(secret_url)
            if creds is None:
                # nothing secret in it: keep the URL readable in messages
                forget_secret(secret_url)
            return url, creds
        host = self.repo_host
        if self.use_ssh:
            return f"git@{host}:{self.repo}.git", None
        base = host if "://" in host else f"https://{host}"
        return f"{base.rstrip('/')}/{self.repo}.git", None

    def make_host(self) -> Host:
        url, url_creds = self._url()
        secret = self.git_token_secret_name

        def credentials() -> Credentials | None:
            if secret:
                token = resolve_secret(secret)
                netloc = urlsplit(url).netloc or self.repo_host
                return token_credentials(netloc, token, self.git_token_username, self.format_access_token)
            if url_creds and url_creds.password:
                register_secret(url_creds.password)
            return url_creds

        return GitHost(url, credentials if (secret or url_creds) else _none, secret_name=secret)

    def _load(self, name: str | None, location: str) -> Flow:
        """The flow asked for by name; with none, ``flow_name`` (or the only flow in the script)."""
        return super()._load(name or self.flow_name, location)


def _none() -> Credentials | None:
    return None


