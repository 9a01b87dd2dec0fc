"""``CodeCommit``: a flow script in an AWS CodeCommit repository."""

from __future__ import annotations

from typing import Any

from gitflows.aws import split_client_options
from gitflows.hosts.codecommit import CodeCommitHost
from gitflows.storage.repo import RepoStorage


class CodeCommit(RepoStorage):
    """``CodeCommit(repo, path=None, commit=None, client_options=None, **kwargs)``, as in Prefect 1.

    ``path`` is the script's path in the repository; a leading ``/`` (CodeCommit's own notation,
    ``/flows/flow.py``) means the repository root. ``commit`` is anything CodeCommit takes as a commit
    specifier: a branch name, a tag, a full commit id, or a reference such as ``refs/heads/main``;
    without it, the head of the repository's default branch (Prefect 1 crashed there).
    ``client_options`` go to ``boto3.client`` (``region_name``, ``endpoint_url``, ``profile_name``...);
    credentials in them (``aws_access_key_id``...) are used but never serialized or printed; else the
    ``AWS_CREDENTIALS`` secret, else the AWS credential chain (see :mod:`gitflows.aws`).
    """

    type_name = "CodeCommit"
    fields = ("repo", "path", "commit", "client_options")
    ref_field = "commit"

    def __init__(self, repo: str, path: str | None = None, commit: str | None = None,
                 client_options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repo, self.path, self.commit = repo, path, commit
        options, self._credentials = split_client_options(client_options, "CodeCommit")
        self.client_options = options if client_options is not None else None

    @property
    def script_path(self) -> str | None:
        return self.path.lstrip("/") if self.path else self.path

    def make_host(self) -> CodeCommitHost:
        return CodeCommitHost(self.repo, self.client_options, credentials=self._credentials)

    @property
    def _boto3_client(self) -> Any:
        """The boto3 CodeCommit client this storage uses (Prefect 1's property of that name)."""
        return self.make_host().client()
