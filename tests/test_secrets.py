from __future__ import annotations

import logging

import keyring
import keyring.backend
import pytest

from gitflows.errors import ConfigurationError, GitflowsError, SecretNotFoundError
from gitflows.redact import get_logger, redact
from gitflows.secrets import resolve_secret


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1

    def __init__(self):
        super().__init__()
        self.store = {}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        self.store.pop((service, username), None)


@pytest.fixture
def memory_keyring(monkeypatch):
    monkeypatch.delenv("GITFLOWS_NO_KEYRING")
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


def test_environment_first(monkeypatch):
    monkeypatch.setenv("TOKEN_A", "env-value-123")
    assert resolve_secret("TOKEN_A") == "env-value-123"


def test_keyring_then_file(memory_keyring, isolated):
    memory_keyring.set_password("gitflows", "TOKEN_B", "from-keyring-456")
    assert resolve_secret("TOKEN_B") == "from-keyring-456"
    secrets_file = isolated / "secrets.toml"
    secrets_file.write_text('TOKEN_C = "from-file-789"\n')
    secrets_file.chmod(0o600)
    assert resolve_secret("TOKEN_C") == "from-file-789"


def test_group_readable_secrets_file_is_refused(isolated):
    secrets_file = isolated / "secrets.toml"
    secrets_file.write_text('TOKEN_D = "leaky-value"\n')
    secrets_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match=r"readable by group or others \(mode 0644\); run: chmod 600") as err:
        resolve_secret("TOKEN_D")
    assert "leaky-value" not in str(err.value)


def test_missing_secret_says_where_it_looked(isolated):
    with pytest.raises(SecretNotFoundError) as err:
        resolve_secret("NOPE_TOKEN")
    text = str(err.value)
    assert "environment variable NOPE_TOKEN" in text
    assert "keyring" in text
    assert f"secrets file {isolated / 'secrets.toml'} (absent)" in text


def test_unreadable_toml_does_not_echo_the_file(isolated):
    secrets_file = isolated / "secrets.toml"
    secrets_file.write_text('TOKEN_E = "half-open-secret\n')
    secrets_file.chmod(0o600)
    with pytest.raises(ConfigurationError) as err:
        resolve_secret("TOKEN_E")
    assert "half-open-secret" not in str(err.value)


def test_resolved_values_are_scrubbed_from_logs_and_errors(monkeypatch, caplog):
    monkeypatch.setenv("TOKEN_F", "s3cr3t/value+x")
    value = resolve_secret("TOKEN_F")
    log = get_logger("gitflows.test")
    with caplog.at_level(logging.DEBUG, logger="gitflows"):
        log.info("calling https://x-access-token:%s@example/ with %s", value, "s3cr3t%2Fvalue%2Bx")
        try:
            raise RuntimeError(f"boom {value}")
        except RuntimeError:
            log.exception("failed")
    assert "s3cr3t" not in caplog.text
    assert "***" in caplog.text
    err = GitflowsError(f"auth failed for token {value}")
    assert value not in str(err) and value not in repr(err)
    assert redact(f"x{value}y") == "x***y"
