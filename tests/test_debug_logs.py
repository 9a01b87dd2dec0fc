"""``--debug`` shows gitflows' debug logs, not client libraries' (which print request headers and
signed URLs holding credentials gitflows did not resolve, such as an AWS session token from the
default chain)."""

from __future__ import annotations

import logging

from click.testing import CliRunner

from gitflows.cli import CLIENT_LOGGERS, cli


def test_debug_keeps_client_libraries_at_info(monkeypatch):
    monkeypatch.delenv("GITFLOWS_DEBUG_CLIENT_LIBRARIES", raising=False)
    for name in CLIENT_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    monkeypatch.setattr(logging.getLogger(), "level", logging.DEBUG)  # what --debug's basicConfig sets
    result = CliRunner().invoke(cli, ["--debug", "cache", "info"])
    assert result.exit_code == 0, result.output
    assert logging.getLogger("gitflows").getEffectiveLevel() == logging.DEBUG
    for name in ("botocore", "urllib3", "azure"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name


def test_client_library_debug_on_request(monkeypatch):
    monkeypatch.setenv("GITFLOWS_DEBUG_CLIENT_LIBRARIES", "1")
    for name in CLIENT_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    monkeypatch.setattr(logging.getLogger(), "level", logging.DEBUG)
    CliRunner().invoke(cli, ["--debug", "cache", "info"])
    assert logging.getLogger("botocore").isEnabledFor(logging.DEBUG)
