"""Every ```python block of the README and docs/ runs as written, so the docs cannot drift.

A page's blocks run in order in one namespace (a later block may use what an earlier one made, as a
reader would), in a fresh folder holding the README's ``flows/etl.py``, with every connection to
anything but 127.0.0.1 refused. Blocks that talk to GitHub run against the GitHub fake on 127.0.0.1,
holding the same file. The only page not run here is named in ``ELSEWHERE`` with the test that runs
the same calls against real servers.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
PAGES = ["README.md", *sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "docs").glob("*.md"))]
ELSEWHERE = {
    # needs a Docker daemon and a registry: tests/docker/test_daemon.py and test_daemonless.py build, push
    # and load with exactly these arguments against the real dockerd and docker-registry the suite starts
    "docs/docker.md",
    # a whole walkthrough with a git server, a registry and an agent: tests/test_docs_migrating.py runs it
    "docs/migrating.md",
}
#: what a page's text says exists before its first block (a reader's own script, here the README's)
PRELUDE = {"docs/scripts.md": "source_text = open('flows/etl.py').read()\n"}


def readme_flow() -> str:
    return BLOCK.findall((REPO_ROOT / "README.md").read_text())[0]


def pages_with_examples() -> list[str]:
    return [p for p in PAGES if p not in ELSEWHERE and BLOCK.search((REPO_ROOT / p).read_text())]


@pytest.fixture
def offline(monkeypatch):
    """Connections anywhere but 127.0.0.1 (or a Unix socket) fail: a doc example never reaches the internet."""
    real = socket.socket.connect

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"doc examples may not connect to {host}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def github_fake(tmp_path, monkeypatch):
    """The GitHub API on 127.0.0.1 holding acme/flows with the README's flows/etl.py on main."""
    import gitflows.hosts.github as github_host
    from tests.fakes.github_api import FakeGitHub
    from tests.fakes.gitrepo import GitRepo
    from tests.fakes.serve import NO_MOCK, serve

    repo = GitRepo(tmp_path / "acme-flows", default_branch="main")
    repo.commit({"flows/etl.py": readme_flow()})
    fake, server = serve(lambda base: FakeGitHub(NO_MOCK, repo, base=base + "/api/v3", token="doc-token-123456"))
    monkeypatch.setattr(github_host, "DEFAULT_BASE_URL", fake.base)
    monkeypatch.setenv("GITHUB_TOKEN", "doc-token-123456")
    yield fake
    server.shutdown()


def test_every_page_with_examples_is_run_or_named():
    assert "README.md" in pages_with_examples() and "docs/hosts.md" in pages_with_examples()
    for page in ELSEWHERE:
        assert BLOCK.search((REPO_ROOT / page).read_text()), f"{page} no longer has an example: drop it"


@pytest.mark.parametrize("page", pages_with_examples())
def test_examples_run_as_written(page, tmp_path, monkeypatch, offline, github_fake):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(readme_flow())
    namespace = {"__name__": "__main__"}  # as `python example.py` runs it: runs sit under `if __name__ == ...`
    if page in PRELUDE:
        exec(PRELUDE[page], namespace)
    for i, source in enumerate(BLOCK.findall((REPO_ROOT / page).read_text())):
        exec(compile(source, f"{page} example {i + 1}", "exec"), namespace)
    if page == "README.md":  # the second block pinned the flow and loaded it back from "GitHub"
        assert namespace["data"]["sha"] and namespace["flow"].name == "etl"
        assert any(path.startswith("/repos/acme/flows/") for _, path in github_fake.requests)
