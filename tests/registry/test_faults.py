"""Faults an agent and the listings must survive: NUL bytes in run output, bad rows, secrets a child
failed to mask, a PostgreSQL password in the registry URL. SQLite and PostgreSQL (``registry_url``)."""

from __future__ import annotations

import json
import textwrap

import pytest

from gitflows.agent import Agent
from gitflows.errors import GitflowsError
from gitflows.registry import FlowVersion, open_registry
from gitflows.storage import Local

from ..conftest import run_cli

NUL_FLOW = textwrap.dedent('''
    from gitflows import Flow, task

    @task
    def noisy():
        print("before\\x00after", flush=True)
        raise ValueError("bad\\x00byte")

    with Flow("nul") as flow:
        noisy()
''')

OK_FLOW = textwrap.dedent('''
    from gitflows import Flow, task

    @task
    def fine():
        print("all good", flush=True)

    with Flow("ok") as flow:
        fine()
''')


def register_script(url, tmp_path, name, source, secrets=None):
    path = tmp_path / "flows" / f"{name}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(source)
    storage = Local(stored_as_script=True, path=str(path), secrets=list(secrets or []))
    storage.add_flow(__import__("gitflows").Flow(name))
    reg = open_registry(url)
    reg.register(FlowVersion(name=name, version=0, storage=storage.serialize(), repo=None, path=str(path),
                             requested_ref=None, sha=None, closure=[], fingerprint=f"fp-{name}", labels=[],
                             state="confirmed", registered_at=0.0))
    return reg


def test_nul_bytes_in_output_and_error_are_stored_and_the_agent_goes_on(registry_url, tmp_path):
    reg = register_script(registry_url, tmp_path, "nul", NUL_FLOW)
    register_script(registry_url, tmp_path, "ok", OK_FLOW)
    bad = reg.create_run("nul")
    good = reg.create_run("ok")
    done = dict(Agent(registry_url, poll=0.05).run(once=True))
    assert done == {bad.id: "failed", good.id: "success"}
    stored = open_registry(registry_url).get_run(bad.id)
    assert stored.state == "failed"
    assert "\x00" not in stored.logs and "before\ufffdafter" in stored.logs
    assert stored.error and "\x00" not in stored.error
    assert open_registry(registry_url).get_run(good.id).state == "success"


def test_a_run_that_cannot_be_recorded_is_marked_failed_and_the_agent_goes_on(registry_url, tmp_path):
    reg = register_script(registry_url, tmp_path, "ok", OK_FLOW)
    first = reg.create_run("ok")
    second = reg.create_run("ok")

    class Unrecordable(Agent):
        def _child(self, run, storage):
            outcome = super()._child(run, storage)
            if run.id == first.id:
                outcome.logs = object()  # not text: recording it fails in the database driver
            return outcome

    done = dict(Unrecordable(registry_url, poll=0.05).run(once=True))
    assert done[second.id] == "success"
    lost = open_registry(registry_url).get_run(first.id)
    assert lost.state == "failed"
    assert "could not record" in lost.error


def write_sql(url, statement, args=()):
    """Change the registry behind gitflows' back, as a damaged or hand-edited database would be."""
    reg = open_registry(url)
    reg.conn().execute(reg.dialect.q(statement), tuple(args))
    reg.close()


def agent_then_listings(url, tmp_path):
    done = dict(Agent(url, poll=0.05).run(once=True))
    listed = {args: run_cli(*args, cwd=tmp_path, env={"GITFLOWS_REGISTRY": url})
              for args in (("flows",), ("flows", "--json"), ("runs",), ("runs", "--json"))}
    for args, result in listed.items():
        assert result.returncode == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    for args in (("flows", "--json"), ("runs", "--json")):
        json.loads(listed[args].stdout)
    return done, listed


def test_a_run_naming_a_version_that_no_longer_exists_is_failed(registry_url, tmp_path):
    reg = register_script(registry_url, tmp_path, "ok", OK_FLOW)
    orphan, good = reg.create_run("ok"), reg.create_run("ok")
    write_sql(registry_url, "UPDATE runs SET version = 99 WHERE id = ?", (orphan.id,))
    done, listed = agent_then_listings(registry_url, tmp_path)
    assert done == {orphan.id: "failed", good.id: "success"}
    failed = open_registry(registry_url).get_run(orphan.id)
    assert failed.state == "failed" and "flow 'ok' has no version 99" in failed.error
    assert f"{orphan.id}\tok\tv99\tfailed" in listed[("runs",)].stdout


def test_a_version_whose_stored_json_does_not_parse_fails_its_runs_and_is_listed_unreadable(registry_url, tmp_path):
    reg = register_script(registry_url, tmp_path, "broken", OK_FLOW.replace('"ok"', '"broken"'))
    register_script(registry_url, tmp_path, "ok", OK_FLOW)
    bad, good = reg.create_run("broken"), reg.create_run("ok")
    write_sql(registry_url, "UPDATE flow_versions SET storage = ? WHERE name = 'broken'", ('{"type": "Local",',))
    done, listed = agent_then_listings(registry_url, tmp_path)
    assert done == {bad.id: "failed", good.id: "success"}
    failed = open_registry(registry_url).get_run(bad.id)
    assert "flow 'broken' version 1" in failed.error and "stored storage is not valid JSON" in failed.error
    text = listed[("flows",)].stdout
    assert "broken\tv1" in text and "unreadable: stored storage is not valid JSON" in text and "ok\tv1" in text
    rows = {r["name"]: r for r in json.loads(listed[("flows", "--json")].stdout)}
    assert rows["broken"]["unreadable"].startswith("stored storage is not valid JSON") and rows["ok"]["unreadable"] is None


def test_a_run_whose_parameters_do_not_parse_is_failed_and_listed_unreadable(registry_url, tmp_path):
    reg = register_script(registry_url, tmp_path, "ok", OK_FLOW)
    bad, good = reg.create_run("ok"), reg.create_run("ok")
    write_sql(registry_url, "UPDATE runs SET parameters = ? WHERE id = ?", ("{'n': 1", bad.id))
    done, listed = agent_then_listings(registry_url, tmp_path)
    assert done == {bad.id: "failed", good.id: "success"}
    failed = open_registry(registry_url).get_run(bad.id)
    assert f"run {bad.id} is unreadable: stored parameters is not valid JSON" in failed.error
    assert f"{bad.id}\tok\tv1\tfailed" in listed[("runs",)].stdout and "unreadable: stored parameters" in \
        listed[("runs",)].stdout
    rows = {r["id"]: r for r in json.loads(listed[("runs", "--json")].stdout)}
    assert rows[bad.id]["unreadable"].startswith("stored parameters is not valid JSON")
    assert rows[good.id]["unreadable"] is None and rows[good.id]["state"] == "success"


SECRET_FLOW = textwrap.dedent('''
    import os
    from gitflows import Flow, task

    @task
    def leak():
        os.system("echo token=$API_TOKEN")          # straight to the file descriptor: the child cannot mask it
        raise RuntimeError("failed with " + os.environ["API_TOKEN"])

    with Flow("leaky") as flow:
        leak()
''')
TOKEN = "tok-9d1e55aa-do-not-print"


def test_the_agent_masks_the_secrets_the_storage_names_even_when_the_child_did_not(registry_url, tmp_path,
                                                                                  monkeypatch, capsys):
    from gitflows.redact import forget_all

    forget_all()  # this process has never seen the value: only the storage's secret names can tell the agent
    monkeypatch.setenv("API_TOKEN", TOKEN)
    reg = register_script(registry_url, tmp_path, "leaky", SECRET_FLOW, secrets=["API_TOKEN"])
    run = reg.create_run("leaky")
    done = dict(Agent(registry_url, poll=0.05, echo=True).run(once=True))
    assert done == {run.id: "failed"}
    stored = open_registry(registry_url).get_run(run.id)
    assert "token=***" in stored.logs
    assert TOKEN not in stored.logs and TOKEN not in (stored.error or "")
    out = capsys.readouterr()
    assert "token=***" in out.out and TOKEN not in out.out + out.err


PASSWORD = "pw-71c3e0-hunter2"
BAD_URLS = [
    f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/gitflows_no_such_db",
    f"postgresql://postgres@127.0.0.1:5432/gitflows_no_such_db?password={PASSWORD}&sslmode=disable",
    f"postgresql://postgres:{PASSWORD}%zz@127.0.0.1:5432/gitflows_no_such_db",
    f"postgresql://postgres@127.0.0.1:5432/gitflows_no_such_db?password={PASSWORD}%G1",
]


def test_a_registry_password_is_never_printed(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    commands = [(BAD_URLS[0], ("flows",)), (BAD_URLS[1], ("runs", "--json")), (BAD_URLS[2], ("run", "etl")),
                (BAD_URLS[3], ("flows", "--json")), (BAD_URLS[2], ("runs",))]

    def call(command):
        url, args = command
        return url, args, run_cli(*args, cwd=tmp_path, env={"GITFLOWS_REGISTRY": url})

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(call, commands))
    for url, args, result in results:
        shown = result.stdout + result.stderr
        assert PASSWORD not in shown and "hunter2" not in shown, (url, args, shown)
        assert "%zz" not in shown and "%G1" not in shown, (url, args, shown)
        assert result.returncode == 2, (url, args, shown)
        assert "registry postgresql://127.0.0.1:5432/gitflows_no_such_db: cannot connect" in result.stderr, shown
        assert len(result.stderr.strip().splitlines()) == 1, (url, args, shown)
    for url in BAD_URLS:  # every URL form through each entry point, in this process
        registry = open_registry(url)
        assert repr(registry) == "Registry('postgresql://127.0.0.1:5432/gitflows_no_such_db')"
        for call_it in (registry.flows, registry.runs, lambda r=registry: r.get_version("etl")):
            with pytest.raises(GitflowsError) as caught:
                call_it()
            assert PASSWORD not in str(caught.value) and "hunter2" not in repr(caught.value)


SLOW_FLOW = textwrap.dedent('''
    import time
    from gitflows import Flow, task

    @task
    def slow():
        time.sleep(2.5)
        print("slept", flush=True)

    with Flow("slow") as flow:
        slow()
''')


@pytest.fixture
def pg_url(monkeypatch):
    from .conftest import _postgres_db

    admin, name = _postgres_db()
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    monkeypatch.setenv("GITFLOWS_REGISTRY", url)

    def drop_connections():
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                      "AND pid <> pg_backend_pid()", (name,))

    yield url, drop_connections
    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def agent_in_thread(agent):
    import threading

    outcome = {}

    def body():
        try:
            outcome["done"] = agent.run()
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            outcome["error"] = exc

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, outcome


def wait_for(predicate, seconds=15.0):
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_an_idle_agent_survives_postgresql_dropping_its_connections(pg_url, tmp_path):
    url, drop_connections = pg_url
    register_script(url, tmp_path, "ok", OK_FLOW).close()
    agent = Agent(url, poll=0.05)
    thread, outcome = agent_in_thread(agent)
    import time

    time.sleep(0.5)  # the agent is polling: its connection is open
    drop_connections()
    time.sleep(0.3)
    run = open_registry(url).create_run("ok")
    try:
        wait_for(lambda: open_registry(url).get_run(run.id).state in ("success", "failed"))
    finally:
        agent.stopping.set()
        thread.join(10)
    assert "error" not in outcome, outcome
    assert open_registry(url).get_run(run.id).state == "success"


def test_a_busy_agent_keeps_heartbeating_once_postgresql_is_back(pg_url, tmp_path):
    import time

    url, drop_connections = pg_url
    reg = register_script(url, tmp_path, "slow", SLOW_FLOW)
    run = reg.create_run("slow")
    reg.close()
    agent = Agent(url, poll=0.05, lease=5, heartbeat=0.2)
    thread, outcome = agent_in_thread(agent)
    try:
        wait_for(lambda: open_registry(url).get_run(run.id).state == "running")
        time.sleep(0.3)
        dropped_at = time.time()
        drop_connections()
        wait_for(lambda: (open_registry(url).get_run(run.id).heartbeat or 0) > dropped_at + 0.3, seconds=2.0)
        wait_for(lambda: open_registry(url).get_run(run.id).state in ("success", "failed"))
    finally:
        agent.stopping.set()
        thread.join(10)
    assert "error" not in outcome, outcome
    done = open_registry(url).get_run(run.id)
    assert done.state == "success", done.error
