from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gitflows import redact

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch):
    """Each test gets its own cache, home, secrets file, and no system keyring."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GITFLOWS_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("GITFLOWS_SECRETS_FILE", str(home / "secrets.toml"))
    monkeypatch.setenv("GITFLOWS_NO_KEYRING", "1")
    monkeypatch.delenv("GITFLOWS_SIGNING_KEY_SECRET", raising=False)
    yield home
    redact.forget_all()


@pytest.fixture
def write(tmp_path):
    """write("flows/etl.py", source) -> Path, dedenting the source."""

    def _write(rel: str, text: str, root: Path | None = None) -> Path:
        path = (root or tmp_path) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return _write


def run_cli(*args: str, cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `gitflows` command (python -m gitflows) and capture what a user sees."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "gitflows", *args], cwd=cwd, env=full_env, text=True,
                          capture_output=True, input=input, timeout=120)


def secret_forms(secret: str) -> list[str]:
    """A secret as a server may echo it: raw, percent-encoded, and in HTTP Basic ``user:secret`` forms."""
    import base64
    from urllib.parse import quote

    forms = {secret, quote(secret, safe="")}
    for user in ("x-access-token", "oauth2", "x-token-auth", "token", "git", ""):
        forms.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return sorted(forms)


def exception_texts(error: BaseException) -> list[str]:
    """Everything an exception carries that code or a logger may print: str, repr, args, attributes,
    and the same for every exception chained to it (``__cause__`` and ``__context__``, suppressed
    or not)."""
    texts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        exc = pending.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        texts += [str(exc), repr(exc), repr(exc.args)]
        texts += [repr(v) for k, v in vars(exc).items() if not k.startswith("__")]
        texts += [str(note) for note in getattr(exc, "__notes__", [])]
        pending += [e for e in (exc.__cause__, exc.__context__) if e is not None]
    return texts


def assert_secret_not_carried(secret: str, error: BaseException) -> None:
    for text in exception_texts(error):
        for form in secret_forms(secret):
            assert form not in text, f"the secret (as {form[:6]}...) is carried by the error: {text[:300]}"


def git(*args: str, cwd: str | os.PathLike[str]) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, text=True, capture_output=True).stdout


def pytest_sessionfinish(session, exitstatus):
    """In CI a skipped test means a server or tool could not start: that is a failure, not a skip."""
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"CI: {skipped} test(s) skipped; in CI every test must run", red=True)
        session.exitstatus = 1
