"""The registry: flow versions (what was registered, pinned to which commit) and flow runs.

``open_registry(url=None)``: ``GITFLOWS_REGISTRY`` or *url* — ``sqlite:///path/registry.db``
(the embedded default, under the user's data folder) or ``postgresql://...`` (shared by many agents
on many machines). Both are the same class over the DB-API (:mod:`gitflows.registry.sql`); only
connecting and two statements differ per dialect.
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


def open_registry(url: str | None = None) -> Registry:
    url = url or os.environ.get(ENV) or default_url()
    if url.startswith("sqlite:///"):
        from gitflows.registry.sql import SQLiteDialect

        path = url[len("sqlite:///"):]
        if not path.startswith("/"):
            path = os.path.abspath(path)
        return Registry(SQLiteDialect(path), url)
    if url.startswith(("postgresql://", "postgres://")):
        from gitflows.registry.sql import PostgresDialect

        return Registry(PostgresDialect(url), url)
    raise ConfigurationError(f"{ENV}: unsupported registry URL {url.split('://')[0]!r}://...; use sqlite:///path "
                             "or postgresql://user@host/db")


__all__ = ["FlowVersion", "Registry", "Run", "open_registry", "default_url"]
