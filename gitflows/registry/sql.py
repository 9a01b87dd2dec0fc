"""One registry implementation over the DB-API, for SQLite and PostgreSQL.

What is safe concurrently (many processes, many machines on PostgreSQL):

* ``register`` serialises per flow name (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level
  advisory lock on the name), so parallel registrations never lose or duplicate a version, and an
  unchanged flow (same fingerprint and closure) gets no new version.
* ``claim`` is a conditional update (``... WHERE id = ? AND state = 'scheduled'``): exactly one agent
  wins a run, whatever the number of agents.
* ``reap`` returns runs whose heartbeat lease expired to ``scheduled`` (attempts left) or ``lost``.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from gitflows.errors import ConfigurationError, FlowNotFoundError, GitflowsError, NotFoundError
from gitflows.redact import get_logger, redact, register_secret
from gitflows.registry.schema import ensure_schema

log = get_logger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

RUN_STATES = ("scheduled", "claimed", "running", "success", "failed", "lost")
FINISHED = ("success", "failed", "lost", "cancelled")

@dataclass
class FlowVersion:
    name: str
    version: int
    storage: dict[str, Any]
    repo: str | None
    path: str | None
    requested_ref: str | None
    sha: str | None
    closure: list[tuple[str, str]]
    fingerprint: str
    labels: list[str]
    state: str
    registered_at: float
    max_attempts: int = 2
    unreadable: str | None = None  # why the stored row could not be read (then storage etc. are empty)
    schedule: dict[str, Any] | None = None  # Schedule.to_dict() of a scheduled flow
    structure: dict[str, Any] | None = None  # Flow.structure(): tasks, edges, parameters (the graph)


@dataclass
class Run:
    id: int
    flow_name: str
    version: int
    parameters: dict[str, Any]
    state: str
    attempts: int
    max_attempts: int
    agent: str | None
    heartbeat: float | None
    created_at: float
    due_at: float
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    logs: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    unreadable: str | None = None  # why the stored row could not be read (then parameters are empty)
    lease: float | None = None  # seconds without a heartbeat after which the run is reaped (set by claim)
    slot: str | None = None  # the schedule slot a scheduled run was created for (unique per flow)
    tasks: dict[str, str] | None = None  # each task's final state (a mapped task: "Mapped")


@dataclass
class Agent:
    """An agent as it last reported itself (every poll)."""

    name: str
    labels: list[str]
    started_at: float
    last_seen: float


class UnreadableRowError(GitflowsError):
    """A row of the registry that cannot be read (its stored JSON does not parse or has the wrong shape)."""


class NoRegistryError(GitflowsError):
    """A read-only command found no registry database (nothing has been registered there yet)."""


class SQLiteDialect:
    name = "sqlite"
    pk = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: str, create: bool = True) -> None:
        self.path = path
        self.create = create

    def connect(self) -> Any:
        if not os.path.exists(self.path):
            if not self.create:
                raise NoRegistryError(f"no registry at {self.describe()} yet: nothing has been registered there "
                                      "(gitflows register creates it); check GITFLOWS_REGISTRY")
            try:
                os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            except OSError as exc:
                raise GitflowsError(f"registry {self.describe()}: cannot create its folder ({exc.strerror})") \
                    from None
        try:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise GitflowsError(f"registry {self.describe()}: {self.path} cannot be used as a SQLite database "
                                f"({exc}); move it away or point GITFLOWS_REGISTRY at another file") from None
        return conn

    def q(self, sql: str) -> str:
        return sql

    def begin_exclusive(self, conn: Any, key: str) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def begin(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def describe(self) -> str:
        return f"sqlite:///{self.path}"

    def table_exists(self, conn: Any, table: str) -> bool:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() \
            is not None

    def disconnected(self, exc: BaseException) -> bool:
        return False


class PostgresDialect:
    name = "postgresql"
    pk = "BIGSERIAL PRIMARY KEY"

    def __init__(self, url: str) -> None:
        self.url = url
        for password in _url_passwords(url):
            register_secret(password)  # masked wherever it might be echoed (libpq quotes bad URL parts)

    def connect(self) -> Any:
        try:
            import psycopg
        except ImportError:
            raise ConfigurationError("the PostgreSQL registry needs psycopg:"
                                     " pip install -e '.[postgres]' in the gitflows checkout") from None
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            lines = str(exc).strip().splitlines()
            reason = redact(lines[0] if lines else type(exc).__name__)
            raise GitflowsError(f"registry {self.describe()}: cannot connect ({reason}); check GITFLOWS_REGISTRY "
                                "(postgresql://user@host:port/database)") from None

    def q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def begin_exclusive(self, conn: Any, key: str) -> None:
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))

    def begin(self, conn: Any) -> None:
        conn.execute("BEGIN")

    def disconnected(self, exc: BaseException) -> bool:
        """Whether *exc* says the connection is gone (server restart, failover, terminated backend)."""
        import psycopg

        if not isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return False
        state = getattr(exc, "sqlstate", None)  # None: the client lost the socket; 08xxx, 57P0x: the server says so
        return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")

    def table_exists(self, conn: Any, table: str) -> bool:
        return conn.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
                            "AND table_name = %s", (table,)).fetchone() is not None

    def describe(self) -> str:
        """scheme://host:port/database: never the user name, the password or the query string."""
        return describe_postgres_url(self.url)


class Registry:
    """Flow versions and runs. Cheap to create; one connection per instance, opened lazily.

    A connection that was open and is lost (PostgreSQL restarted, failed over, a proxy's idle timeout)
    is opened again with backoff for up to ``reconnect_for`` seconds, and the statement (or the whole
    transaction) repeated; a registry that cannot be reached at first fails at once."""

    reconnect_for = 60.0

    def __init__(self, dialect: Any, url: str) -> None:
        self.dialect = dialect
        self.url = url
        self._conn: Any = None
        self._connected_once = False
        self._in_tx = False

    def __repr__(self) -> str:
        return f"Registry({self.dialect.describe()!r})"

    # -- plumbing -------------------------------------------------------------------
    def conn(self) -> Any:
        if self._conn is None:
            conn = self.dialect.connect()
            try:
                self._retry(lambda: ensure_schema(conn, self.dialect))
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            self._connected_once = True
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - a connection already gone
                pass
            self._conn = None

    def _reconnecting(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(*args, **kwargs)``, repeated on a fresh connection (backoff 0.1 s doubling to 5 s, for up to
        ``reconnect_for`` seconds) while the connection it had is lost."""
        deadline = time.monotonic() + self.reconnect_for
        delay = 0.1
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                lost = self._connected_once and (self.dialect.disconnected(exc) or (
                    isinstance(exc, GitflowsError) and "cannot connect" in str(exc)))
                if not lost or self._in_tx:
                    raise
                self.close()
                if time.monotonic() + delay > deadline:
                    raise GitflowsError(f"registry {self.dialect.describe()}: connection lost and not back after "
                                        f"{self.reconnect_for:.0f}s ({redact(str(exc).strip().splitlines()[0])})"
                                        ) from None
                log.warning("registry %s: connection lost (%s); reconnecting in %.1fs", self.dialect.describe(),
                            type(exc).__name__, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _retry(self, fn: Callable[[], _T]) -> _T:
        for attempt in range(20):
            try:
                return fn()
            except Exception as exc:  # a concurrent CREATE TABLE on PostgreSQL, a busy SQLite
                if attempt == 19 or not _transient(exc):
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> Any:
        if self._in_tx:
            return self.conn().execute(self.dialect.q(sql), tuple(args))
        return self._reconnecting(lambda: self.conn().execute(self.dialect.q(sql), tuple(args)))

    @contextmanager
    def _tx(self, key: str | None = None) -> Iterator[Any]:
        conn = self.conn()
        if key is None:
            self.dialect.begin(conn)
        else:
            self.dialect.begin_exclusive(conn, key)
        self._in_tx = True
        try:
            yield conn
        except BaseException as exc:
            self._in_tx = False
            try:
                conn.execute("ROLLBACK")
            except Exception:
                if not self.dialect.disconnected(exc):
                    raise
            raise
        finally:
            self._in_tx = False
        conn.execute("COMMIT")

    # -- versions -------------------------------------------------------------------
    def register(self, version: FlowVersion) -> tuple[FlowVersion, bool]:
        """Record a new version unless the latest has the same fingerprint and closure.
        Returns (the version now current, whether it was created)."""

        def attempt() -> tuple[FlowVersion, bool]:
            with self._tx(f"gitflows:{version.name}"):
                latest = self.latest(version.name)
                if latest and not latest.unreadable and latest.fingerprint == version.fingerprint and \
                        [list(c) for c in latest.closure] == [list(c) for c in version.closure]:
                    return latest, False
                version.version = (latest.version + 1) if latest else 1
                version.registered_at = time.time()
                self._exec("INSERT INTO flow_versions (name, version, storage, repo, path, requested_ref, sha, closure, "
                           "fingerprint, labels, state, max_attempts, registered_at, schedule, structure) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           (version.name, version.version, json.dumps(version.storage), version.repo, version.path,
                            version.requested_ref, version.sha, json.dumps(version.closure), version.fingerprint,
                            json.dumps(version.labels), version.state, version.max_attempts, version.registered_at,
                            json.dumps(version.schedule) if version.schedule is not None else None,
                            json.dumps(version.structure) if version.structure is not None else None))
                return version, True

        return self._reconnecting(self._retry, attempt)

    def _version(self, row: Sequence[Any]) -> FlowVersion:
        try:
            storage = _json_column("storage", row[2], dict)
            closure = _json_column("closure", row[7], list)
            if not all(isinstance(c, list) and len(c) == 2 and all(isinstance(x, str) for x in c) for c in closure):
                raise UnreadableRowError("stored closure is not a list of [path, blob id] pairs")
            closure = [tuple(c) for c in closure]
            labels = _json_column("labels", row[9], list)
            if not all(isinstance(x, str) for x in labels):
                raise UnreadableRowError("stored labels are not a list of strings")
            schedule = _json_column("schedule", row[13], dict) if row[13] is not None else None
        except UnreadableRowError as exc:
            return FlowVersion(name=row[0], version=row[1], storage={}, repo=row[3], path=row[4], requested_ref=row[5],
                               sha=row[6], closure=[], fingerprint=row[8], labels=[], state=row[10],
                               max_attempts=row[11], registered_at=row[12], unreadable=str(exc))
        try:  # the graph is for display: an unreadable one is left out, the version still runs
            structure = _json_column("structure", row[14], dict) if row[14] is not None else None
        except UnreadableRowError:
            structure = None
        return FlowVersion(name=row[0], version=row[1], storage=storage, repo=row[3], path=row[4],
                           requested_ref=row[5], sha=row[6], closure=closure, fingerprint=row[8], labels=labels,
                           state=row[10], max_attempts=row[11], registered_at=row[12], schedule=schedule,
                           structure=structure)

    _VCOLS = ("name, version, storage, repo, path, requested_ref, sha, closure, fingerprint, labels, state, "
              "max_attempts, registered_at, schedule, structure")

    def latest(self, name: str) -> FlowVersion | None:
        row = self._exec(f"SELECT {self._VCOLS} FROM flow_versions WHERE name = ? ORDER BY version DESC LIMIT 1",
                         (name,)).fetchone()
        return self._version(row) if row else None

    def get_version(self, name: str, version: int | None = None) -> FlowVersion:
        if version is None:
            found = self.latest(name)
        else:
            row = self._exec(f"SELECT {self._VCOLS} FROM flow_versions WHERE name = ? AND version = ?",
                             (name, version)).fetchone()
            found = self._version(row) if row else None
        if found is None:
            versions = [v.version for v in self.versions(name)]
            if version is not None and versions:
                raise FlowNotFoundError(f"flow {name!r} has no version {version} in {self.dialect.describe()}; its "
                                        f"versions: {', '.join(map(str, versions))}")
            known = ", ".join(v.name for v in self.flows()) or "none"
            raise FlowNotFoundError(f"flow {name!r} is not registered in {self.dialect.describe()}; registered flows: "
                                    f"{known}")
        if found.unreadable:
            raise UnreadableRowError(f"flow {found.name!r} version {found.version} in {self.dialect.describe()} is "
                                     f"unreadable: {found.unreadable}; register the flow again")
        return found

    def versions(self, name: str | None = None) -> list[FlowVersion]:
        if name is None:
            rows = self._exec(f"SELECT {self._VCOLS} FROM flow_versions ORDER BY name, version").fetchall()
        else:
            rows = self._exec(f"SELECT {self._VCOLS} FROM flow_versions WHERE name = ? ORDER BY version",
                              (name,)).fetchall()
        return [self._version(r) for r in rows]

    def flows(self) -> list[FlowVersion]:
        """The latest version of every flow, by name (one query; older versions are not read)."""
        rows = self._exec(f"SELECT {self._VCOLS} FROM flow_versions v WHERE version = "
                          "(SELECT MAX(version) FROM flow_versions w WHERE w.name = v.name) ORDER BY name").fetchall()
        return [self._version(r) for r in rows]

    def scheduled(self) -> list[FlowVersion]:
        """The latest version of every flow whose latest version has a schedule (what agents poll each
        second: one query over the scheduled flows, not every version of every flow)."""
        rows = self._exec(f"SELECT {self._VCOLS} FROM flow_versions v WHERE schedule IS NOT NULL AND version = "
                          "(SELECT MAX(version) FROM flow_versions w WHERE w.name = v.name) ORDER BY name").fetchall()
        return [self._version(r) for r in rows]

    def pending(self) -> list[FlowVersion]:
        return [v for v in self.versions() if v.state == "pending"]

    def confirm(self, name: str, version: int) -> None:
        self._retry(lambda: self._exec("UPDATE flow_versions SET state = 'confirmed' WHERE name = ? AND version = ?",
                                       (name, version)))

    # -- runs -------------------------------------------------------------------------
    _RCOLS = ("id, flow_name, version, parameters, state, attempts, max_attempts, agent, heartbeat, created_at, due_at, "
              "started_at, finished_at, error, logs, lease, slot, tasks")

    def _run(self, row: Sequence[Any]) -> Run:
        try:
            parameters, unreadable = _json_column("parameters", row[3], dict), None
        except UnreadableRowError as exc:
            parameters, unreadable = {}, str(exc)
        try:
            tasks = _json_column("tasks", row[17], dict) if row[17] is not None else None
        except UnreadableRowError:
            tasks = None
        return Run(id=row[0], flow_name=row[1], version=row[2], parameters=parameters, state=row[4],
                   attempts=row[5], max_attempts=row[6], agent=row[7], heartbeat=row[8], created_at=row[9],
                   due_at=row[10], started_at=row[11], finished_at=row[12], error=row[13], logs=row[14],
                   lease=row[15], slot=row[16], unreadable=unreadable, tasks=tasks)

    def create_run(self, name: str, version: int | None = None, parameters: dict[str, Any] | None = None) -> Run:
        v = self.get_version(name, version)
        now = time.time()
        row = self._retry(lambda: self._exec(
            f"INSERT INTO runs (flow_name, version, parameters, state, attempts, max_attempts, created_at, due_at) "
            f"VALUES (?,?,?,'scheduled',0,?,?,?) RETURNING {self._RCOLS}",
            (v.name, v.version, json.dumps(parameters or {}), v.max_attempts, now, now)).fetchone())
        return self._run(row)

    def create_slot_run(self, version: FlowVersion, slot: str, due_at: float,
                        parameters: dict[str, Any] | None = None) -> Run | None:
        """The run of schedule *slot* of *version*'s flow, created by exactly one caller: the others (another
        agent got there first) get None. A slot is the flow's, whatever version is current."""
        now = time.time()
        row = self._retry(lambda: self._exec(
            f"INSERT INTO runs (flow_name, version, parameters, state, attempts, max_attempts, created_at, due_at, slot) "
            f"VALUES (?,?,?,'scheduled',0,?,?,?,?) ON CONFLICT DO NOTHING RETURNING {self._RCOLS}",
            (version.name, version.version, json.dumps(parameters or {}), version.max_attempts, now, due_at,
             slot)).fetchone())
        return self._run(row) if row else None

    def last_slot_due(self, name: str) -> float | None:
        """When the latest scheduled run of flow *name* was due (None: none yet)."""
        row = self._exec("SELECT MAX(due_at) FROM runs WHERE flow_name = ? AND slot IS NOT NULL", (name,)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def pause(self, name: str, paused: bool = True) -> None:
        """Pause (or resume) flow *name*'s schedule: a paused flow gets no scheduled runs."""
        self.get_version(name)  # a clear error for an unknown flow
        if paused:
            self._retry(lambda: self._exec("INSERT INTO paused_flows (name, paused_at) VALUES (?, ?) "
                                           "ON CONFLICT DO NOTHING", (name, time.time())))
        else:
            self._retry(lambda: self._exec("DELETE FROM paused_flows WHERE name = ?", (name,)))

    def paused(self) -> set[str]:
        return {r[0] for r in self._exec("SELECT name FROM paused_flows").fetchall()}

    def get_run(self, run_id: int) -> Run:
        row = self._exec(f"SELECT {self._RCOLS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"run {run_id} is not in {self.dialect.describe()}")
        return self._run(row)

    def runs(self, name: str | None = None, limit: int = 1000, offset: int = 0, state: str | None = None) -> list[Run]:
        """Runs, newest first; *offset* skips that many (pages), *state* keeps one state only."""
        where, args = self._run_filter(name, state)
        rows = self._exec(f"SELECT {self._RCOLS} FROM runs{where} ORDER BY id DESC LIMIT ? OFFSET ?",
                          (*args, limit, offset)).fetchall()
        return [self._run(r) for r in rows]

    def count_runs(self, name: str | None = None, state: str | None = None) -> int:
        where, args = self._run_filter(name, state)
        return int(self._exec(f"SELECT COUNT(*) FROM runs{where}", args).fetchone()[0])

    @staticmethod
    def _run_filter(name: str | None, state: str | None) -> tuple[str, tuple[Any, ...]]:
        clauses = [(c, v) for c, v in (("flow_name = ?", name), ("state = ?", state)) if v]
        return ((" WHERE " + " AND ".join(c for c, _ in clauses)) if clauses else "", tuple(v for _, v in clauses))

    def last_runs(self) -> dict[str, Run]:
        """The newest run of every flow (one query)."""
        rows = self._exec(f"SELECT {self._RCOLS} FROM runs r WHERE id = (SELECT MAX(id) FROM runs s "
                          "WHERE s.flow_name = r.flow_name)").fetchall()
        return {run.flow_name: run for run in map(self._run, rows)}

    def cancel(self, run_id: int) -> bool:
        """Cancel a run no agent has taken yet; False when it is no longer scheduled (taken, finished)."""
        self.get_run(run_id)  # a clear error for an unknown run
        cur = self._retry(lambda: self._exec(
            "UPDATE runs SET state = 'cancelled', finished_at = ? WHERE id = ? AND state = 'scheduled'",
            (time.time(), run_id)))
        return bool(cur.rowcount == 1)

    # -- agents -----------------------------------------------------------------------
    def agent_seen(self, name: str, labels: Sequence[str]) -> None:
        """Record that agent *name* (serving *labels*) is alive now."""
        now = time.time()
        self._retry(lambda: self._exec(
            "INSERT INTO agents (name, labels, started_at, last_seen) VALUES (?,?,?,?) ON CONFLICT (name) DO UPDATE "
            "SET labels = excluded.labels, last_seen = excluded.last_seen", (name, json.dumps(sorted(labels)), now, now)))

    def agents(self) -> list[Agent]:
        rows = self._exec("SELECT name, labels, started_at, last_seen FROM agents ORDER BY last_seen DESC").fetchall()
        found = []
        for name, labels, started_at, last_seen in rows:
            try:
                parsed = _json_column("labels", labels, list)
            except UnreadableRowError:
                parsed = []
            found.append(Agent(name, [str(x) for x in parsed], started_at, last_seen))
        return found

    def wait_for(self, run_id: int, timeout: float, poll: float = 0.2, notice_after: float | None = None,
                 notice: Any = None) -> Run:
        """The run once it has finished, or as it is after *timeout* seconds. *notice(run)* is called once
        if the run is still scheduled (no agent took it) after *notice_after* seconds."""
        start = time.monotonic()
        current = self.get_run(run_id)
        noticed = False
        while current.state not in FINISHED and time.monotonic() - start < timeout:
            if (notice is not None and not noticed and notice_after is not None and current.state == "scheduled"
                    and time.monotonic() - start >= notice_after):
                notice(current)
                noticed = True
            time.sleep(poll)
            current = self.get_run(run_id)
        return current

    def waiting_for(self, run: Run) -> str | None:
        """Why a scheduled run has not started, in words: a later due time, labels an agent must have."""
        if run.state != "scheduled":
            return None
        try:
            labels = self.get_version(run.flow_name, run.version).labels
        except GitflowsError:
            labels = []
        said = f"waits for an agent with labels {', '.join(sorted(labels))}" if labels else "waits for an agent"
        if run.due_at > time.time() + 0.5:
            said += f"; due in {run.due_at - time.time():.0f}s" + (f" ({run.error})" if run.error else "")
        return said

    def due(self, limit: int = 50) -> list[Run]:
        rows = self._exec(f"SELECT {self._RCOLS} FROM runs WHERE state = 'scheduled' AND due_at <= ? ORDER BY due_at, id "
                          "LIMIT ?", (time.time(), limit)).fetchall()
        return [self._run(r) for r in rows]

    def claim(self, run_id: int, agent: str, lease: float | None = None) -> bool:
        """Take a scheduled run for *agent*; True for exactly one caller. *lease* (seconds) is stored on
        the run: whoever reaps it applies that lease, not its own."""
        cur = self._retry(lambda: self._exec(
            "UPDATE runs SET state = 'claimed', agent = ?, heartbeat = ?, lease = ?, attempts = attempts + 1 "
            "WHERE id = ? AND state = 'scheduled'", (agent, time.time(), lease, run_id)))
        return bool(cur.rowcount == 1)

    def heartbeat(self, run_id: int, agent: str, logs: str | None = None) -> bool:
        """Extend the lease (and store the output so far, when given); False when the run is no longer this
        agent's."""
        if logs is None:
            cur = self._retry(lambda: self._exec(
                "UPDATE runs SET heartbeat = ? WHERE id = ? AND agent = ? AND state IN ('claimed', 'running')",
                (time.time(), run_id, agent)))
        else:
            text = storable_text(logs)
            cur = self._retry(lambda: self._exec(
                "UPDATE runs SET heartbeat = ?, logs = ? WHERE id = ? AND agent = ? AND state IN ('claimed', 'running')",
                (time.time(), text, run_id, agent)))
        return bool(cur.rowcount == 1)

    def start(self, run_id: int, agent: str) -> bool:
        """Mark a claimed run running; False when it is no longer *agent*'s (reaped meanwhile)."""
        cur = self._retry(lambda: self._exec(
            "UPDATE runs SET state = 'running', started_at = ?, heartbeat = ? WHERE id = ? AND agent = ? "
            "AND state = 'claimed'", (time.time(), time.time(), run_id, agent)))
        return bool(cur.rowcount == 1)

    def finish(self, run_id: int, agent: str, state: str, error: str | None = None, logs: str | None = None,
               tasks: dict[str, str] | None = None) -> bool:
        error, logs = storable_text(error), storable_text(logs)
        stored = json.dumps(tasks) if tasks is not None else None
        cur = self._retry(lambda: self._exec(
            "UPDATE runs SET state = ?, finished_at = ?, error = ?, logs = ?, tasks = ? WHERE id = ? AND agent = ? "
            "AND state IN ('claimed', 'running')", (state, time.time(), error, logs, stored, run_id, agent)))
        return bool(cur.rowcount == 1)

    def postpone(self, run_id: int, agent: str, seconds: float, note: str) -> None:
        """Give a claimed run back (e.g. its commit is not on the remote yet) to be tried again later."""
        self._retry(lambda: self._exec(
            "UPDATE runs SET state = 'scheduled', agent = NULL, due_at = ?, attempts = attempts - 1, error = ? "
            "WHERE id = ? AND agent = ?", (time.time() + seconds, storable_text(note), run_id, agent)))

    def reap(self, lease: float) -> list[tuple[int, str]]:
        """Runs whose agent stopped heartbeating for longer than the lease the run was claimed with
        (*lease* for runs claimed without one): rescheduled, or lost when out of attempts."""
        return self._reconnecting(self._reap_once, lease)

    def _reap_once(self, lease: float) -> list[tuple[int, str]]:
        now = time.time()
        changed: list[tuple[int, str]] = []
        with self._tx("gitflows:reap"):
            rows = self._exec("SELECT id, attempts, max_attempts, agent, COALESCE(lease, ?) FROM runs "
                              "WHERE state IN ('claimed', 'running') AND heartbeat + COALESCE(lease, ?) < ?",
                              (lease, lease, now)).fetchall()
            for run_id, attempts, max_attempts, agent, run_lease in rows:
                note = f"agent {agent} stopped heartbeating (lease {run_lease:g}s expired) on attempt {attempts}"
                if attempts < max_attempts:
                    self._exec("UPDATE runs SET state = 'scheduled', agent = NULL, due_at = ?, error = ? WHERE id = ?",
                               (time.time(), note, run_id))
                    changed.append((run_id, "scheduled"))
                else:
                    self._exec("UPDATE runs SET state = 'lost', finished_at = ?, error = ? WHERE id = ?",
                               (time.time(), note + f"; no attempts left ({max_attempts})", run_id))
                    changed.append((run_id, "lost"))
        return changed


def describe_postgres_url(url: str) -> str:
    """``postgresql://host:port/database`` of a PostgreSQL URL, whatever else (credentials, query) it holds."""
    netloc = url.partition("://")[2].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    hostport = netloc.rpartition("@")[2]
    rest = url.partition("://")[2][len(netloc):]
    database = rest.lstrip("/").split("?", 1)[0].split("#", 1)[0]
    return f"postgresql://{hostport}/{database}"


def _url_passwords(url: str) -> list[str]:
    """Every form of a password a PostgreSQL URL carries (user info, ``?password=``), raw and decoded."""
    from urllib.parse import unquote

    found: list[str] = []
    netloc = url.partition("://")[2].split("/", 1)[0].split("?", 1)[0]
    userinfo = netloc.rpartition("@")[0]
    if ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    for pair in url.partition("?")[2].split("#", 1)[0].split("&"):
        key, _, value = pair.partition("=")
        if unquote(key).strip().lower() == "password":
            found.append(value)
    return [form for raw in found for form in {raw, unquote(raw), unquote(raw.replace("+", " "))} if form]


def _json_column(column: str, raw: Any, kind: type) -> Any:
    """A JSON column's value, which must be a *kind*; :class:`UnreadableRowError` saying why not."""
    try:
        value = json.loads(raw)
    except (TypeError, ValueError, RecursionError) as exc:
        raise UnreadableRowError(f"stored {column} is not valid JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(value, kind):
        raise UnreadableRowError(f"stored {column} is a JSON {type(value).__name__}, expected a JSON "
                                 f"{'object' if kind is dict else 'array'}")
    return value


def storable_text(text: str | None) -> str | None:
    """*text* as every database stores it: NUL (PostgreSQL refuses it in TEXT) becomes U+FFFD, and what
    is not valid UTF-8 (lone surrogates) becomes "?"."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"a text column takes str, not {type(text).__name__}")
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _transient(exc: Exception) -> bool:
    text = str(exc).lower()
    return ("locked" in text or "busy" in text or "deadlock" in text or "already exists" in text
            or "duplicate key" in text or "could not serialize" in text)


def agent_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
