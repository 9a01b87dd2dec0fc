"""``Git``: a flow script in any git repository, fetched with dulwich (see gitflows.hosts.git).

The constructor is Prefect 1.4.1's ``prefect.storage.Git``, argument for argument and in the same
order. What differs on purpose: credentials travel in an ``Authorization`` header, never in the
clone URL (so ``git_clone_url`` is the URL *without* credentials); ``commit`` is honoured; a
flow is fetched at one commit, never cloned; ``get_flow(name)`` returns the flow asked for.
"""

from __future__ import annotations

import warnings
from typing import Any

from gitflows.errors import ConfigurationError
from gitflows.flow import Flow
from gitflows.hosts import Host
from gitflows.hosts.git import Credentials, GitHost, split_url
from gitflows.redact import forget_secret, register_secret
from gitflows.secrets import resolve_secret
from gitflows.storage.repo import RepoStorage

DEFAULT_REPO_HOST = "github.com"

SSH_AND_TOKEN_WARNING = (
    "Git Storage initialized with `use_ssh = True` and `git_token_secret_name` provided. "
    "SSH will be used to clone the repository. `git_token_secret_name` will be ignored")
CLONE_URL_WARNING = (
    "Git storage initialized with a `git_clone_url_secret_name`. The value of this Secret will be used to clone the "
    "repository, ignoring `repo`, `repo_host`, `git_token_secret_name`,  `git_token_username`, `use_ssh`, and "
    "`format_access_token`.")


def token_credentials(token: str, username: str | None, format_access_token: bool) -> Credentials:
    """What Prefect 1.4.1 put before the ``@`` of the clone URL, as an ``Authorization`` header instead.

    ``format_access_token``: basic auth ``username:token`` (Prefect: ``git_token_username``, which
    defaults to the repo owner). Otherwise the secret is used as given: ``user:password``, or a bare
    token sent as the user name with an empty password (what ``https://TOKEN@host`` sends); a
    secret ``Bearer <token>`` is sent as a bearer token (Bitbucket Data Center project tokens).
    """
    if format_access_token:
        return Credentials(username or "", token)
    if token[:7].lower() == "bearer ":
        register_secret(token[7:].strip())
        return Credentials(bearer=token[7:].strip())
    user, sep, password = token.partition(":")
    register_secret(password if sep else user)
    return Credentials(user, password if sep else "")


class Git(RepoStorage):
    """``Git(flow_path, repo=None, repo_host="github.com", flow_name=None, git_token_secret_name=None,
    git_token_username=None, git_clone_url_secret_name=None, branch_name=None, tag=None, commit=None,
    clone_depth=1, use_ssh=False, format_access_token=True, **kwargs)`` — Prefect 1.4.1's arguments.

    The URL is ``https://{repo_host}/{repo}.git`` (``repo_host`` may carry a scheme), or
    ``git@{repo_host}:{repo}.git`` with ``use_ssh``, or the value of the secret named by
    ``git_clone_url_secret_name``, which then overrides ``repo``, ``repo_host``, the token
    arguments and ``use_ssh`` (credentials inside that URL are moved into a header). The ref is
    ``commit``, else ``tag``, else ``branch_name``, else the remote's default branch; give at most
    one. ``git_token_username`` defaults to the repo owner (``repo.split("/")[0]``), as in Prefect.
    ``clone_depth`` is accepted and recorded: gitflows always fetches exactly one commit.
    """

    repo_is_remote_path = True

    type_name = "Git"
    fields = ("flow_path", "repo", "repo_host", "flow_name", "git_token_secret_name", "git_token_username",
              "git_clone_url_secret_name", "branch_name", "tag", "commit", "clone_depth", "use_ssh",
              "format_access_token")
    path_field = "flow_path"

    def __init__(self, flow_path: str, repo: str | None = None, repo_host: str = DEFAULT_REPO_HOST,
                 flow_name: str | None = None, git_token_secret_name: str | None = None,
                 git_token_username: str | None = None, git_clone_url_secret_name: str | None = None,
                 branch_name: str | None = None, tag: str | None = None, commit: str | None = None,
                 clone_depth: int = 1, use_ssh: bool = False, format_access_token: bool = True,
                 **kwargs: Any) -> None:
        given = {k: v for k, v in (("branch_name", branch_name), ("tag", tag), ("commit", commit)) if v}
        if len(given) > 1:
            raise ConfigurationError(
                "Git storage: Please provide only one of the following parameters: `branch_name`, `tag`, `commit` "
                f"(got {', '.join(f'{k}={v!r}' for k, v in given.items())}); a commit pins the flow by itself")
        if repo is None and git_clone_url_secret_name is None:
            raise ConfigurationError(
                f"Git storage for {flow_path!r}: Either `repo` or `git_clone_url_secret_name` must be provided "
                "(repo='owner/name' on repo_host, or the name of a secret holding the whole clone URL)")
        super().__init__(**kwargs)
        if use_ssh and git_token_secret_name is not None:
            self.logger.warning(SSH_AND_TOKEN_WARNING)
            warnings.warn(SSH_AND_TOKEN_WARNING, UserWarning, stacklevel=2)
        if git_clone_url_secret_name and (repo or repo_host != DEFAULT_REPO_HOST or git_token_secret_name
                                          or git_token_username or use_ssh or not format_access_token):
            self.logger.warning(CLONE_URL_WARNING)
        self.flow_path, self.repo, self.repo_host, self.flow_name = flow_path, repo, repo_host, flow_name
        self.git_token_secret_name = git_token_secret_name
        # Prefect 1.4.1: "if not provided, assume the username associated with the token is the
        # organization that owns the repo"
        self.git_token_username = git_token_username or (repo.split("/")[0] if repo else None)
        self.git_clone_url_secret_name = git_clone_url_secret_name
        self.branch_name, self.tag, self.commit = branch_name, tag, commit
        self.clone_depth, self.use_ssh, self.format_access_token = clone_depth, use_ssh, format_access_token

    @property
    def requested_ref(self) -> str | None:
        return self.commit or self.tag or self.branch_name

    # -- Prefect 1.4.1 properties ------------------------------------------------------
    @property
    def git_token_secret(self) -> str:
        """The token as Prefect formatted it: ``""`` without ``git_token_secret_name``;
        ``"{git_token_username}:{token}"`` with ``format_access_token``; else the secret as given.
        (gitflows sends it in an ``Authorization`` header, never in a URL.)"""
        if self.git_token_secret_name is None:
            return ""
        token = resolve_secret(self.git_token_secret_name)
        return f"{self.git_token_username}:{token}" if self.format_access_token else token

    @property
    def git_clone_url(self) -> str:
        """The URL fetched from, *without credentials* (Prefect put the token in it)."""
        return self._clone_url()[0]

    # -- fetching ------------------------------------------------------------------------
    def _clone_url(self) -> tuple[str, Credentials | None]:
        if self.git_clone_url_secret_name:
            secret_url = resolve_secret(self.git_clone_url_secret_name)
            url, creds = split_url(secret_url)
            if creds is None:
                forget_secret(secret_url)  # nothing secret in it: keep the URL readable in messages
            else:  # the password, or a bare token given as the user name (https://TOKEN@host/...)
                register_secret(creds.password or creds.username)
            return url, creds
        host = self.repo_host or DEFAULT_REPO_HOST
        if self.use_ssh:
            return f"git@{host}:{self.repo}.git", None
        base = host if "://" in host else f"https://{host}"
        return f"{base.rstrip('/')}/{self.repo}.git", None

    def _auth_hint(self, url_creds: Credentials | None = None) -> str:
        if self.git_clone_url_secret_name:
            if url_creds:
                return f"check the credentials in the clone URL of secret {self.git_clone_url_secret_name}"
            hint = f"the clone URL in secret {self.git_clone_url_secret_name} carries no credentials"
            if self.git_token_secret_name:
                hint += (f"; git_token_secret_name={self.git_token_secret_name!r} is ignored when "
                         "git_clone_url_secret_name is given (as in Prefect 1): to send that token (in a header), "
                         "give repo_host= (it may carry a scheme) and repo= instead of the clone URL")
            return hint
        hint = f"check the token in secret {self.git_token_secret_name}"
        if self.format_access_token:
            hint += (f"; it was sent with user name {self.git_token_username!r} (git_token_username=, default: the "
                     "repo owner); give git_token_username= if your server expects another one for this token "
                     "(x-access-token for a GitHub App token, x-token-auth for a Bitbucket Cloud access token)")
        return hint

    def make_host(self) -> Host:
        url, url_creds = self._clone_url()
        if self.git_clone_url_secret_name:  # the URL's own credentials (if any); the token arguments are ignored
            return GitHost(url, lambda: url_creds, secret_name=self.git_clone_url_secret_name if url_creds else None,
                           auth_hint=self._auth_hint(url_creds))
        if self.use_ssh or not self.git_token_secret_name:  # SSH keys, or anonymous
            return GitHost(url)
        name, username, formatted = self.git_token_secret_name, self.git_token_username, self.format_access_token

        def credentials() -> Credentials:  # resolved only when a request is about to be made
            return token_credentials(resolve_secret(name), username, formatted)

        return GitHost(url, credentials, secret_name=name, auth_hint=self._auth_hint())

    # -- flows -----------------------------------------------------------------------------
    def _locate(self, name_or_location: str | None = None, flow_name: str | None = None) -> tuple[str | None, str]:
        """``get_flow()`` with no name asks for the storage's ``flow_name`` (when set)."""
        if name_or_location is None and flow_name is None and self.flow_name:
            flow_name = self.flow_name
        return super()._locate(name_or_location, flow_name)

    def _load(self, name: str | None, location: str, ref: str | None = None) -> Flow:
        """The flow asked for by name; with none, ``flow_name`` (or the only flow in the script)."""
        return super()._load(name or self.flow_name, location, ref=ref)
