"""The registry: flow versions (what was registered, pinned to which commit) and flow runs.

``open_registry(url=None)``: ``GITFLOWS_REGISTRY`` or *url* — a SQLite file (the embedded default,
under the user's data folder) or ``postgresql://...`` (shared by many agents on many machines).
Both are the same class over the DB-API (:mod:`gitflows.registry.sql`); only connecting and two
statements differ per dialect.

A SQLite registry is written as users write it: a plain path (``registry.db``, ``~/flows/reg.db``,
``/srv/reg.db``; relative to the current folder), ``sqlite:///srv/reg.db`` (absolute, as in a
``file:///`` URL), or SQLAlchemy's ``sqlite:////srv/reg.db`` (absolute too). ``sqlite:reg.db`` is
relative. Read-only commands open with ``create=False`` and never create a database.
"""

from __future__ import annotations

import os
from pathlib import Path

from gitflows.errors import ConfigurationError
from gitflows.registry.sql import FlowVersion, Registry, Run

ENV = "GITFLOWS_REGISTRY"


def default_url() -> str:
    import platformdirs

    return "sqlite:///" + str(Path(platformdirs.user_data_dir("gitflows")) / "registry.db")


def sqlite_path(url: str) -> str | None:
    """The absolute file path a SQLite registry URL (or plain path) names; None for other URLs."""
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:"):]
        rest = rest[2:] if rest.startswith("//") else rest  # the (empty) authority of sqlite://
        if rest.startswith("/"):
            rest = "/" + rest.lstrip("/")  # sqlite:///abs and SQLAlchemy's sqlite:////abs alike
    elif "://" in url:
        return None
    else:
        rest = url
    rest = os.path.expanduser(rest.split("?", 1)[0])
    if not rest or rest.endswith("/"):
        raise ConfigurationError(f"{ENV}={url!r}: no database file named; write a file path, e.g. "
                                 "sqlite:////srv/gitflows/registry.db or ./registry.db")
    return os.path.abspath(rest)


def open_registry(url: str | None = None, create: bool = True) -> Registry:
    """The registry at *url* (default: ``GITFLOWS_REGISTRY``, else the embedded SQLite file). With
    *create* False (read-only commands), a SQLite file that does not exist is a
    :class:`~gitflows.registry.sql.NoRegistryError` instead of a new, empty database."""
    url = url or os.environ.get(ENV) or default_url()
    path = sqlite_path(url)
    if path is not None:
        from gitflows.registry.sql import SQLiteDialect

        return Registry(SQLiteDialect(path, create=create), url)
    if url.startswith(("postgresql://", "postgres://")):
        from gitflows.registry.sql import PostgresDialect

        return Registry(PostgresDialect(url), url)
    raise ConfigurationError(f"{ENV}: unsupported registry URL {url.split('://')[0]!r}://...; use a file path "
                             "(sqlite:////srv/registry.db) or postgresql://user@host/db")


__all__ = ["FlowVersion", "Registry", "Run", "open_registry", "default_url"]
