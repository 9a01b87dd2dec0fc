from __future__ import annotations

import uuid

import pytest

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_db():
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable ({type(exc).__name__}); CI needs it")
    name = f"gitflows_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE DATABASE {name}")
    return admin, name


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request, tmp_path, monkeypatch):
    """A fresh, empty registry of each kind; GITFLOWS_REGISTRY points at it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.db'}"
        monkeypatch.setenv("GITFLOWS_REGISTRY", url)
        yield url
        return
    admin, name = _postgres_db()
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    monkeypatch.setenv("GITFLOWS_REGISTRY", url)
    yield url
    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()
