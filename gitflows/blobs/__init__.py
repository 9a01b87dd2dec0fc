"""Blob stores: where bytes live under a key. One module per store, one protocol.

A store knows nothing about flows: the blob storages (:mod:`gitflows.storage.blob`) decide what the
bytes are (a pickle envelope or a script), record their sha256, and verify before loading.
"""

from __future__ import annotations

import posixpath
from typing import Protocol

from gitflows.errors import ConfigurationError


class BlobStore(Protocol):
    def label(self) -> str:
        """Names the store in messages, e.g. ``S3 bucket 'flows' (http://127.0.0.1:5000)``."""
        ...

    def put(self, key: str, data: bytes) -> object:
        """Store *data* under *key* (replacing it); returns the server's answer where there is one."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under *key*; :class:`~gitflows.errors.PathNotFoundError` when there are none."""
        ...


def safe_key(key: str) -> str:
    """A key as given, refusing one that would escape its prefix (absolute, ``..``, empty parts)."""
    if not isinstance(key, str) or not key or "\x00" in key or "\\" in key:
        raise ConfigurationError(f"invalid key {key!r}")
    if key.startswith("/"):
        raise ConfigurationError(f"key {key!r} must not start with '/'")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ConfigurationError(f"key {key!r} would escape its prefix or has empty parts ('..', '.', '//')")
    return posixpath.normpath(key)
