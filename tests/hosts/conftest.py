from __future__ import annotations

import json
import logging

import pytest
import responses

from ..fakes.gitrepo import FLOW_WITH_HELPERS, GitRepo

TOKEN = "ghp_S3cretTok3nValue0123456789abcdef"


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def source(tmp_path):
    """A real repo: v1 of a flow with sibling modules on the default branch 'trunk'."""
    repo = GitRepo(tmp_path / "source", default_branch="trunk")
    repo.v1 = repo.commit(FLOW_WITH_HELPERS, "v1")
    return repo


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setenv("GITFLOWS_RETRY_BACKOFF", "0.01")
    monkeypatch.setenv("GITFLOWS_MAX_RATE_LIMIT_WAIT", "5")


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def prefect_script(marker: str) -> str:
    """Prefect 1's test script (flows 'extra' and 'test' in flow.py); the task returns *marker*, which says
    which commit a loaded flow came from."""
    return (
        "from gitflows import Flow, task\n"
        "\n"
        "@task\n"
        "def where():\n"
        f"    return {marker!r}\n"
        "\n"
        "with Flow('extra') as extra:\n"
        "    where()\n"
        "\n"
        "with Flow('test') as flow:\n"
        "    where()\n"
    )


@pytest.fixture
def prefect_repo(tmp_path):
    """The repository Prefect 1's GitHub/GitLab/Bitbucket tests stood for with mocks: ``flow.py`` on the
    default branch 'main' (``repo.main``), a different version on branch 'myref' (``repo.myref``)."""
    repo = GitRepo(tmp_path / "prefect-repo", default_branch="main")
    repo.main = repo.commit({"flow.py": prefect_script("main"), "README.md": "# flows\n"}, "v1")
    repo.myref = repo.commit({"flow.py": prefect_script("myref")}, "on myref", branch="myref")
    return repo


def assert_secret_hidden(secret: str, *, error: BaseException | None = None, caplog=None, storage=None,
                         extra: str = "") -> None:
    """The token value never appears in what a user or a log sees."""
    texts = [extra]
    if error is not None:
        from ..conftest import assert_secret_not_carried

        assert_secret_not_carried(secret, error)
    if caplog is not None:
        texts.append(caplog.text)
    if storage is not None:
        texts += [repr(storage), json.dumps(storage.serialize())]
    for text in texts:
        assert secret not in text
