"""``Bitbucket``: a flow script in Bitbucket Server / Data Center or Bitbucket Cloud."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gitflows.errors import ConfigurationError
from gitflows.hosts import Host
from gitflows.hosts.bitbucket import BitbucketCloudHost, BitbucketServerHost
from gitflows.secrets import resolve_optional_secret, resolve_secret
from gitflows.storage.repo import RepoStorage, token_getter


class Bitbucket(RepoStorage):
    """``Bitbucket(project, repo, workspace=None, host=None, path=None, ref=None, access_token_secret=None,
    cloud_username_secret=None, cloud_app_password_secret=None, **kwargs)``.

    Server / Data Center: ``project`` (key) + ``repo`` (slug) + ``host`` (the server's base URL);
    a bearer token from ``access_token_secret`` (default name ``BITBUCKET_ACCESS_TOKEN``).

    Cloud: give ``workspace``. Credentials are a user name + app password
    (``cloud_username_secret`` + ``cloud_app_password_secret``) or an access token
    (``access_token_secret``). ``host`` together with ``workspace`` overrides the Cloud API URL.
    """

    type_name = "Bitbucket"
    fields = ("project", "repo", "workspace", "host", "path", "ref", "access_token_secret",
              "cloud_username_secret", "cloud_app_password_secret")
    default_secret = "BITBUCKET_ACCESS_TOKEN"

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
        if bool(cloud_username_secret) != bool(cloud_app_password_secret):
            raise ConfigurationError("Bitbucket Cloud app passwords need both cloud_username_secret and "
                                     "cloud_app_password_secret")
        if not workspace and not host:
            raise ConfigurationError("Bitbucket needs host= (the Server's URL) or workspace= (Cloud)")

    def make_host(self) -> Host:
        if self.workspace:
            return BitbucketCloudHost(self.workspace, self.repo, self._cloud_credentials(), self._url(),
                                      auth_hint=self._cloud_hint())
        name = self.access_token_secret or self.default_secret
        return BitbucketServerHost(self.project, self.repo, self._url() or "",
                                   token_getter(self.access_token_secret, self.default_secret), secret_name=name)

    def _url(self) -> str | None:
        if not self.host:
            return None
        return (self.host if "://" in self.host else f"https://{self.host}").rstrip("/")

    def _cloud_credentials(self) -> Callable[[], dict[str, str]]:
        def get() -> dict[str, str]:
            if self.cloud_username_secret and self.cloud_app_password_secret:
                return {"username": resolve_secret(self.cloud_username_secret),
                        "password": resolve_secret(self.cloud_app_password_secret)}
            token = (resolve_secret(self.access_token_secret) if self.access_token_secret
                     else resolve_optional_secret(self.default_secret))
            return {"token": token} if token else {}

        return get

    def _cloud_hint(self) -> str:
        if self.cloud_username_secret:
            return f"check the app password in secrets {self.cloud_username_secret} / {self.cloud_app_password_secret}"
        return f"check the token in secret {self.access_token_secret or self.default_secret}"
