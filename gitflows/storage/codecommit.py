"""``CodeCommit``: a flow script in an AWS CodeCommit repository."""

from __future__ import annotations

from typing import Any

from gitflows.aws import check_client_options
from gitflows.hosts import Host
from gitflows.hosts.codecommit import CodeCommitHost
from gitflows.storage.repo import RepoStorage


class CodeCommit(RepoStorage):
    """``CodeCommit(repo, path=None, commit=None, client_options=None, **kwargs)``.

    ``commit`` is a branch name or a full commit id; without it, the head of the repository's
    default branch (Prefect 1 crashed there). ``client_options`` go to ``boto3.client``
    (``region_name``, ``endpoint_url``, ``config``); credentials come from the AWS credential chain
    and are refused in ``client_options``, since a storage is serialized.
    """

    type_name = "CodeCommit"
    fields = ("repo", "path", "commit", "client_options")
    ref_field = "commit"

    def __init__(self, repo: str, path: str | None = None, commit: str | None = None,
                 client_options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repo, self.path, self.commit = repo, path, commit
        self.client_options = check_client_options(client_options, "CodeCommit")

    def make_host(self) -> Host:
        return CodeCommitHost(self.repo, self.client_options)
