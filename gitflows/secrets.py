"""Resolving named secrets.

A storage names a secret (``access_token_secret="GITHUB_TOKEN"``); it never
holds the value. :func:`resolve_secret` looks the name up, in order:

1. an environment variable of that name;
2. the system keyring, service ``gitflows``, user name = the secret's name;
3. a secrets file (TOML, ``NAME = "value"``): ``GITFLOWS_SECRETS_FILE`` or
   ``<user config dir>/gitflows/secrets.toml``. The file is refused when its
   permissions let group or others read it.

Every value found is registered with the redactor before it is returned, so it
never appears in gitflows' logs, exceptions, reprs or serialized output.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

from gitflows.errors import ConfigurationError, SecretNotFoundError
from gitflows.redact import get_logger, register_secret

KEYRING_SERVICE = "gitflows"
log = get_logger(__name__)


def secrets_file_path() -> Path:
    """Where the optional secrets file is looked for."""
    explicit = os.environ.get("GITFLOWS_SECRETS_FILE")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("gitflows")) / "secrets.toml"


def _from_keyring(name: str) -> tuple[str | None, str]:
    if os.environ.get("GITFLOWS_NO_KEYRING"):
        return None, "keyring (disabled by GITFLOWS_NO_KEYRING)"
    try:
        import keyring
        import keyring.errors
    except ImportError:  # pragma: no cover - keyring is a dependency
        return None, "keyring (not installed)"
    try:
        value = keyring.get_password(KEYRING_SERVICE, name)
    except keyring.errors.KeyringError as exc:
        return None, f"keyring service {KEYRING_SERVICE!r} (unavailable: {type(exc).__name__})"
    except Exception as exc:  # a broken backend must not hide the other sources
        return None, f"keyring service {KEYRING_SERVICE!r} (error: {type(exc).__name__})"
    return value, f"keyring service {KEYRING_SERVICE!r}"


def _from_file(name: str) -> tuple[str | None, str]:
    path = secrets_file_path()
    try:
        st = path.stat()
    except FileNotFoundError:
        return None, f"secrets file {path} (absent)"
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"secrets file {path} is readable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # The parser's message may quote a line of the file: do not repeat it.
        raise ConfigurationError(f"secrets file {path} could not be read as TOML ({type(exc).__name__})") from None
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"secret {name!r} in {path} must be a string, found {type(value).__name__}")
    return value, f"secrets file {path}"


def resolve_secret(name: str) -> str:
    """Return the value of the secret called *name*, or raise :class:`SecretNotFoundError`."""
    if not name or not isinstance(name, str):
        raise ConfigurationError(f"a secret name must be a non-empty string, got {name!r}")
    looked = [f"environment variable {name}"]
    value = os.environ.get(name)
    if not value:
        value, where = _from_keyring(name)
        looked.append(where)
    if not value:
        value, where = _from_file(name)
        looked.append(where)
    if not value:
        raise SecretNotFoundError(f"secret {name!r} not found; looked in: " + "; ".join(looked))
    register_secret(value)
    log.debug("resolved secret %s", name)
    return value


def resolve_optional_secret(name: str | None) -> str | None:
    """Like :func:`resolve_secret` but returns None when *name* is None or nothing is found."""
    if not name:
        return None
    try:
        return resolve_secret(name)
    except SecretNotFoundError:
        return None
