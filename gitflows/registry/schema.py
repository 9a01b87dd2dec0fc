"""The registry's schema: an ordered list of migrations and the version row that records them.

Each migration is a number, a description and DDL statements written once for both dialects
(``{pk}`` is the dialect's auto-increment primary key). A registry records every migration applied
to it in ``gitflows_schema`` (one row per version); its schema version is the highest.

Opening a registry (:func:`ensure_schema`):

* at the current version: one ``SELECT``, nothing written (the usual case);
* older (or empty, or written before versioning — "schema 1", which had no version table): the
  missing migrations are applied in order inside one transaction holding the schema lock (SQLite:
  ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level advisory lock). Both databases roll DDL back,
  so a migration that fails, or a process killed halfway, leaves the previous version intact. Any
  number of agents may start at once: the first migrates, the others wait for the lock and find the
  work done;
* newer than this gitflows knows: refused with :class:`SchemaTooNewError` before anything is read
  or written, since an older gitflows cannot know what a newer schema means.

Rules for a new migration: append it, never edit one that shipped; it must keep every row (add
columns with defaults or NULL, copy before dropping); and add a fixture of the schema it replaces
under ``tests/registry/fixtures/``.
"""

from __future__ import annotations

import time
from typing import Any

from gitflows.errors import GitflowsError

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "flow versions and runs", [
        """CREATE TABLE IF NOT EXISTS flow_versions (
            id {pk},
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            storage TEXT NOT NULL,
            repo TEXT,
            path TEXT,
            requested_ref TEXT,
            sha TEXT,
            closure TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            labels TEXT NOT NULL,
            state TEXT NOT NULL,
            max_attempts INTEGER NOT NULL DEFAULT 2,
            registered_at DOUBLE PRECISION NOT NULL,
            UNIQUE (name, version)
        )""",
        """CREATE TABLE IF NOT EXISTS runs (
            id {pk},
            flow_name TEXT NOT NULL,
            version INTEGER NOT NULL,
            parameters TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 2,
            agent TEXT,
            heartbeat DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL,
            due_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            error TEXT,
            logs TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS runs_state_due ON runs (state, due_at)",
    ]),
    (2, "each run stores the lease it was claimed with (a reaper applies it, not its own)", [
        "ALTER TABLE runs ADD COLUMN lease DOUBLE PRECISION",
    ]),
    (3, "schedules: a version records its schedule; a scheduled run its slot, once per flow; paused flows", [
        "ALTER TABLE flow_versions ADD COLUMN schedule TEXT",
        "ALTER TABLE runs ADD COLUMN slot TEXT",
        "CREATE UNIQUE INDEX IF NOT EXISTS runs_slot ON runs (flow_name, slot) WHERE slot IS NOT NULL",
        """CREATE TABLE IF NOT EXISTS paused_flows (
            name TEXT PRIMARY KEY,
            paused_at DOUBLE PRECISION NOT NULL
        )""",
    ]),
    (4, "for the web page: a version's flow graph, a run's task states, agents seen, cancelled runs", [
        "ALTER TABLE flow_versions ADD COLUMN structure TEXT",
        "ALTER TABLE runs ADD COLUMN tasks TEXT",
        """CREATE TABLE IF NOT EXISTS agents (
            name TEXT PRIMARY KEY,
            labels TEXT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            last_seen DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS runs_flow_id ON runs (flow_name, id)",
    ]),
]

CURRENT = MIGRATIONS[-1][0]

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS gitflows_schema (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL,
    applied_by TEXT NOT NULL
)"""


class SchemaTooNewError(GitflowsError):
    """The registry was migrated by a newer gitflows than this one."""


def ensure_schema(conn: Any, dialect: Any, migrations: list[tuple[int, str, list[str]]] | None = None) -> int:
    """Bring the registry on *conn* to the newest schema this gitflows knows; return its version."""
    migrations = MIGRATIONS if migrations is None else migrations
    newest = migrations[-1][0]
    found = _read_version(conn, dialect)
    if found is not None:
        _refuse_newer(found, newest, dialect)
        if found == newest:
            return found
    dialect.begin_exclusive(conn, "gitflows:schema")
    try:
        conn.execute(_VERSION_TABLE)
        found = _read_version(conn, dialect) or 0
        _refuse_newer(found, newest, dialect)
        for number, description, statements in migrations:
            if number <= found:
                continue
            for statement in statements:
                conn.execute(statement.format(pk=dialect.pk))
            conn.execute(dialect.q("INSERT INTO gitflows_schema (version, description, applied_at, applied_by) "
                                   "VALUES (?, ?, ?, ?)"), (number, description, time.time(), _applied_by()))
    except BaseException:
        try:
            conn.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection is gone: the server rolled it back
            pass
        raise
    conn.execute("COMMIT")
    return newest


def _read_version(conn: Any, dialect: Any) -> int | None:
    """The highest migration recorded, or None when there is no version table (new, or schema 1)."""
    if not dialect.table_exists(conn, "gitflows_schema"):
        return None
    row = conn.execute("SELECT MAX(version) FROM gitflows_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def _refuse_newer(found: int, newest: int, dialect: Any) -> None:
    if found > newest:
        from gitflows.version import __version__

        raise SchemaTooNewError(
            f"registry {dialect.describe()} has schema version {found}, newer than this gitflows "
            f"{__version__} knows (up to {newest}): a newer gitflows upgraded it. Upgrade gitflows here "
            "(pip install -e . in an up-to-date checkout); a registry is never downgraded")


def _applied_by() -> str:
    from gitflows.version import __version__

    return f"gitflows {__version__}"
