"""``Bitbucket``: a flow script in Bitbucket Cloud or Bitbucket Server / Data Center."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from gitflows.errors import (
    AuthenticationError,
    ConfigurationError,
    PathNotFoundError,
    RateLimitedError,
    RefNotFoundError,
    RepoNotFoundError,
)
from gitflows.flow import Flow
from gitflows.hosts import Host
from gitflows.hosts.bitbucket import BitbucketCloudHost, BitbucketServerHost
from gitflows.remote import also_builtin
from gitflows.secrets import resolve_optional_secret, resolve_secret
from gitflows.storage.repo import RepoStorage, token_getter

#: host names that are Bitbucket Cloud, not a Server (Prefect 1's default ``host`` was https://bitbucket.org)
CLOUD_HOSTS = ("bitbucket.org", "www.bitbucket.org", "api.bitbucket.org")


class Bitbucket(RepoStorage):
    """``Bitbucket(project, repo, workspace=None, host=None, path=None, ref=None, access_token_secret=None,
    cloud_username_secret=None, cloud_app_password_secret=None, **kwargs)``.

    As in Prefect 1, ``workspace`` selects **Bitbucket Cloud**: ``repositories/<workspace>/<repo>``
    on ``https://api.bitbucket.org`` (``host`` together with ``workspace`` replaces that URL: proxies,
    tests). Credentials: a user name + app password (``cloud_username_secret`` +
    ``cloud_app_password_secret``; a name not given falls back to Prefect's default names
    ``BITBUCKET_CLOUD_USERNAME`` / ``BITBUCKET_CLOUD_APP_PASSWORD``), or an access token
    (``access_token_secret``, or ``BITBUCKET_ACCESS_TOKEN``), or none (public repositories).

    Without ``workspace``: **Bitbucket Server / Data Center** at ``host`` (its base URL), with
    ``project`` (key) + ``repo`` (slug) and a bearer token from ``access_token_secret`` (default
    name ``BITBUCKET_ACCESS_TOKEN``). With neither ``host`` nor ``workspace`` (Prefect 1 then sent
    Server API requests to bitbucket.org, which cannot answer them) loading says what to set.

    ``ref`` is a branch, tag or commit; without it, the repository's default (main) branch.
    """

    type_name = "Bitbucket"
    fields = ("project", "repo", "workspace", "host", "path", "ref", "access_token_secret",
              "cloud_username_secret", "cloud_app_password_secret")
    default_secret = "BITBUCKET_ACCESS_TOKEN"
    default_cloud_username = "BITBUCKET_CLOUD_USERNAME"
    default_cloud_app_password = "BITBUCKET_CLOUD_APP_PASSWORD"

    def __init__(self, project: str, repo: str, workspace: str | None = None, host: str | None = None,
                 path: str | None = None, ref: str | None = None, access_token_secret: str | None = None,
                 cloud_username_secret: str | None = None, cloud_app_password_secret: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project, self.repo, self.workspace, self.host = project, repo, workspace, host
        self.path, self.ref = path, ref
        self.access_token_secret = access_token_secret
        self.cloud_username_secret = cloud_username_secret
        self.cloud_app_password_secret = cloud_app_password_secret

    # -- which Bitbucket ------------------------------------------------------------------
    @property
    def is_cloud(self) -> bool:
        """Bitbucket Cloud: a ``workspace`` is given, or ``host`` is bitbucket.org."""
        return bool(self.workspace) or (self._url() is not None and urlsplit(self._url()).hostname in CLOUD_HOSTS)

    def make_host(self) -> Host:
        if self.is_cloud:
            if not self.workspace:
                raise ConfigurationError(
                    f"Bitbucket storage for repo {self.repo!r}: {self.host} is Bitbucket Cloud, which needs "
                    "workspace= (the first part of bitbucket.org/<workspace>/<repo>)")
            cloud_url = self._url()
            if cloud_url and urlsplit(cloud_url).hostname in CLOUD_HOSTS:
                cloud_url = None  # the API is at api.bitbucket.org, whichever of its names was given
            return BitbucketCloudHost(self.workspace, self.repo, self._cloud_credentials(), cloud_url,
                                      auth_hint=self._cloud_hint())
        if not self.host:
            raise ConfigurationError(
                f"Bitbucket storage for project {self.project!r}, repo {self.repo!r} has neither host= nor "
                "workspace=: for Bitbucket Cloud set workspace= (bitbucket.org/<workspace>/<repo>); for "
                "Bitbucket Server / Data Center set host= to the server's URL")
        name = self.access_token_secret or self.default_secret
        return BitbucketServerHost(self.project, self.repo, self._url() or "",
                                   token_getter(self.access_token_secret, self.default_secret), secret_name=name)

    def _url(self) -> str | None:
        if not self.host:
            return None
        return (self.host if "://" in self.host else f"https://{self.host}").rstrip("/")

    # -- Cloud credentials ----------------------------------------------------------------
    def _app_password_names(self) -> tuple[str, str]:
        return (self.cloud_username_secret or self.default_cloud_username,
                self.cloud_app_password_secret or self.default_cloud_app_password)

    def _cloud_credentials(self) -> Callable[[], dict[str, str]]:
        """Resolved when the first request is made: the named app password pair, else the named token,
        else Prefect's default pair, else the default token, else anonymous."""

        def get() -> dict[str, str]:
            user_name, password_name = self._app_password_names()
            if self.cloud_username_secret or self.cloud_app_password_secret:
                user = (resolve_secret(self.cloud_username_secret) if self.cloud_username_secret
                        else resolve_optional_secret(user_name))
                password = (resolve_secret(self.cloud_app_password_secret) if self.cloud_app_password_secret
                            else resolve_optional_secret(password_name))
                if not user or not password:
                    missing = user_name if not user else password_name
                    raise ConfigurationError(
                        f"Bitbucket Cloud storage for {self.workspace}/{self.repo}: an app password needs both a "
                        f"user name and a password; secret {missing!r} was not found (name it with "
                        "cloud_username_secret= / cloud_app_password_secret=)")
                return {"username": user, "password": password}
            if self.access_token_secret:
                return {"token": resolve_secret(self.access_token_secret)}
            user, password = resolve_optional_secret(user_name), resolve_optional_secret(password_name)
            if user and password:
                return {"username": user, "password": password}
            token = resolve_optional_secret(self.default_secret)
            return {"token": token} if token else {}

        return get

    def _cloud_hint(self) -> str:
        user_name, password_name = self._app_password_names()
        if self.cloud_username_secret or self.cloud_app_password_secret:
            return f"check the app password in secrets {user_name} / {password_name}"
        if self.access_token_secret:
            return f"check the token in secret {self.access_token_secret}"
        return (f"check secrets {user_name} / {password_name} or {self.default_secret} (or name yours with "
                "cloud_username_secret= and cloud_app_password_secret=, or access_token_secret=)")

    # -- the builtins Prefect 1 raised for Bitbucket Cloud ------------------------------------
    @contextmanager
    def _as_prefect_raised(self) -> Iterator[None]:
        """Bitbucket Cloud in Prefect 1 raised ``RuntimeError`` for every failed request and ``ValueError``
        for a ref that is no branch or tag: gitflows' errors there are also instances of those."""
        if not self.is_cloud:
            yield
            return
        try:
            yield
        except RefNotFoundError as exc:
            raise also_builtin(exc, ValueError).with_traceback(exc.__traceback__) from None
        except (AuthenticationError, RepoNotFoundError, PathNotFoundError, RateLimitedError) as exc:
            raise also_builtin(exc, RuntimeError).with_traceback(exc.__traceback__) from None

    def _load(self, name: str | None, location: str, ref: str | None = None) -> Flow:
        with self._as_prefect_raised():
            return super()._load(name, location, ref=ref)

    def build(self) -> Bitbucket:
        with self._as_prefect_raised():
            super().build()
        return self
