"""The registry schema is versioned and migrated in place: registries written before versioning
(fixtures of schema 1, on SQLite and PostgreSQL) open with every flow, version and run intact, many
processes opening one at once migrate it exactly once, a failing migration leaves the previous
schema whole, and a schema newer than this gitflows knows is refused in one line."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
from pathlib import Path

import pytest

from gitflows.agent import Agent
from gitflows.registry import open_registry
from gitflows.registry import schema as schema_module
from gitflows.registry.schema import CURRENT, SchemaTooNewError

from ..conftest import run_cli
from .conftest import _postgres_db

FIXTURES = Path(__file__).parent / "fixtures"


def _load_pg_dump(url: str, schema: int) -> None:
    import psycopg

    sql = (FIXTURES / f"registry-schema{schema}.pg.sql").read_text()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)  # psycopg runs a multi-statement script without parameters as one request


OLD_SCHEMAS = sorted(int(p.stem.removeprefix("registry-schema")) for p in FIXTURES.glob("registry-schema*.db"))


@pytest.fixture(params=[(kind, schema) for schema in OLD_SCHEMAS for kind in ("sqlite", "postgresql")],
                ids=lambda p: f"{p[0]}-schema{p[1]}")
def schema1_url(request, tmp_path, monkeypatch):
    """A registry written by an older gitflows (every schema kept as a fixture), of each kind."""
    kind, schema = request.param
    if kind == "sqlite":
        path = tmp_path / "registry.db"
        shutil.copy(FIXTURES / f"registry-schema{schema}.db", path)
        url = f"sqlite:///{path}"
        monkeypatch.setenv("GITFLOWS_REGISTRY", url)
        yield url
        return
    admin, name = _postgres_db()
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    _load_pg_dump(url, schema)
    monkeypatch.setenv("GITFLOWS_REGISTRY", url)
    yield url
    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def schema_rows(url: str) -> list[tuple[int, str]]:
    reg = open_registry(url)
    try:
        rows = reg._exec("SELECT version, applied_by FROM gitflows_schema ORDER BY version").fetchall()
    finally:
        reg.close()
    return [tuple(r) for r in rows]


def test_a_schema_1_registry_opens_with_everything_it_held(schema1_url):
    reg = open_registry(schema1_url)
    versions = [(v.name, v.version, v.sha, v.labels, v.closure, v.fingerprint, v.state) for v in reg.versions()]
    assert versions == [
        ("etl", 1, "0123456789abcdef0123456789abcdef01234567", ["prod"],
         [("flows/etl.py", "a" * 40), ("flows/helpers.py", "b" * 40)], "fp-etl-0", "confirmed"),
        ("etl", 2, "0123456789abcdef0123456789abcdef01234567", ["prod"],
         [("flows/etl.py", "a" * 40), ("flows/helpers.py", "b" * 40)], "fp-etl-1", "confirmed"),
        ("report", 1, None, [], [], "fp-report-0", "confirmed"),
        ("report", 2, None, [], [], "fp-report-1", "confirmed"),
    ]
    assert reg.get_version("etl", 2).storage["repo"] == "acme/flows"
    runs = {r.id: r for r in reg.runs()}
    assert [(i, runs[i].flow_name, runs[i].version, runs[i].state, runs[i].agent) for i in sorted(runs)] == [
        (1, "etl", 1, "success", "host:1"), (2, "report", 2, "failed", "host:1"),
        (3, "etl", 2, "running", "host:2"), (4, "etl", 2, "scheduled", None)]
    assert runs[1].parameters == {"day": "2026-12-01"} and "success  extract" in runs[1].logs
    assert runs[2].error == "task 'render' failed"
    assert runs[3].lease in (None, 30.0)  # schema 1 stored no lease; schema 2 did
    assert [v for v, _ in schema_rows(schema1_url)] == list(range(1, CURRENT + 1))
    # new rows get new ids after the old ones (sequences carried over)
    assert reg.create_run("report").id == 5


def test_the_migrated_registry_works_for_the_cli_and_agents(schema1_url):
    listing = run_cli("flows")
    assert listing.returncode == 0, listing.stderr
    assert "etl" in listing.stdout and "report" in listing.stdout
    runs = run_cli("runs", "--json")
    assert runs.returncode == 0, runs.stderr
    # the run left "running" by an agent of the old release: its stored lease (30 s) or, before schema 2,
    # the reaper's applies; written long ago, either has expired
    agent = Agent(schema1_url, lease=5, poll=0.05)
    assert (3, "scheduled") in open_registry(schema1_url).reap(agent.lease)
    reg = open_registry(schema1_url)
    assert reg.claim(4, "new-agent", 12.5)
    assert reg.get_run(4).lease == 12.5


def _open_and_count(url: str) -> int:
    reg = open_registry(url)
    try:
        return len(reg.versions())
    finally:
        reg.close()


def test_many_processes_opening_an_old_registry_at_once_migrate_it_once(schema1_url):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(6) as pool:
        counts = pool.map(_open_and_count, [schema1_url] * 12)
    assert counts == [4] * 12
    rows = schema_rows(schema1_url)
    assert [v for v, _ in rows] == list(range(1, CURRENT + 1))  # one row per migration: none applied twice


def test_a_new_registry_is_created_at_the_current_schema(registry_url):
    reg = open_registry(registry_url)
    assert reg.runs() == []
    assert [v for v, _ in schema_rows(registry_url)] == list(range(1, CURRENT + 1))
    assert all(by.startswith("gitflows ") for _, by in schema_rows(registry_url))


def test_opening_at_the_current_schema_takes_no_lock_and_writes_nothing(registry_url, monkeypatch):
    open_registry(registry_url).close()
    before = schema_rows(registry_url)

    def no_lock(self, conn, key):
        raise AssertionError(f"took the {key} lock on a registry already at the current schema")

    from gitflows.registry import sql

    monkeypatch.setattr(sql.SQLiteDialect, "begin_exclusive", no_lock)
    monkeypatch.setattr(sql.PostgresDialect, "begin_exclusive", no_lock)
    assert open_registry(registry_url).runs() == []
    assert schema_rows(registry_url) == before


def test_a_failing_migration_leaves_the_previous_schema_whole(registry_url, monkeypatch):
    open_registry(registry_url).close()
    broken = [*schema_module.MIGRATIONS, (CURRENT + 1, "half done", [
        "CREATE TABLE half_done (x INTEGER)",
        "ALTER TABLE no_such_table ADD COLUMN y INTEGER",
    ])]
    monkeypatch.setattr(schema_module, "MIGRATIONS", broken)
    with pytest.raises(Exception):
        open_registry(registry_url).runs()
    monkeypatch.setattr(schema_module, "MIGRATIONS", broken[:-1])
    reg = open_registry(registry_url)
    assert [v for v, _ in schema_rows(registry_url)] == list(range(1, CURRENT + 1))
    assert not reg.dialect.table_exists(reg.conn(), "half_done")  # the first statement was rolled back too


def _stamp_newer(url: str) -> None:
    reg = open_registry(url)
    reg._exec("INSERT INTO gitflows_schema (version, description, applied_at, applied_by) VALUES (?, ?, ?, ?)",
              (CURRENT + 1, "from the future", 0.0, "gitflows 99.0"))
    reg.close()


def test_a_newer_schema_is_refused_before_anything_is_read_or_written(registry_url):
    _stamp_newer(registry_url)
    with pytest.raises(SchemaTooNewError) as info:
        open_registry(registry_url).runs()
    message = str(info.value)
    assert f"schema version {CURRENT + 1}" in message and f"up to {CURRENT}" in message
    assert "Upgrade gitflows" in message
    for command in (["flows"], ["runs"], ["run", "etl"], ["agent", "--once"]):
        result = run_cli(*command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)  # an error to act on
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"schema version {CURRENT + 1}" in lines[0], (command, result.stderr)
    assert "password" not in message


def test_a_sqlite_schema_1_fixture_is_what_the_old_release_wrote():
    """The fixture must stay the old release's bytes: no version table, no lease column."""
    conn = sqlite3.connect(f"file:{FIXTURES / 'registry-schema1.db'}?mode=ro", uri=True)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    conn.close()
    assert "gitflows_schema" not in tables and "lease" not in columns
