"""Issue 17: the web page's JSON API and pages on both registries (SQLite, PostgreSQL), through Starlette's
test client (real ASGI requests, no network): what each shows, actions behind the token with CSRF, bad
input, a registry that goes away, and never a secret's value."""

from __future__ import annotations

import re
import time

import pytest
from starlette.testclient import TestClient

from gitflows import Flow, Parameter, task
from gitflows.registry import FlowVersion, open_registry
from gitflows.schedules import IntervalSchedule
from gitflows.ui import create_app

TOKEN = "ui-token-0123456789abcdef"
SECRET_VALUE = "ghp_secretvalue_never_shown_42"


@task
def extract(n):
    return list(range(n))


@task
def double(x):
    return 2 * x


@task
def load(rows):
    return len(rows)


def structure(n_default=3, mapped=True, extra_param=False):
    with Flow("etl") as flow:
        n = Parameter("n", default=n_default)
        if extra_param:
            Parameter("day")
        rows = extract(n)
        load(double.map(rows) if mapped else double(rows))
    return flow.structure()


def register(reg, name="etl", labels=("prod",), sha="a" * 40, structure_=None, schedule=None, storage=None):
    storage = storage or {"type": "GitHub", "repo": "acme/flows", "path": "flows/etl.py",
                          "access_token_secret": "GH_TOKEN", "secrets": ["GH_TOKEN"]}
    version, _ = reg.register(FlowVersion(
        name=name, version=0, storage=storage, repo="acme/flows", path="flows/etl.py", requested_ref="main", sha=sha,
        closure=[["flows/etl.py", "b" * 40], ["flows/lib/helpers.py", "c" * 40]], fingerprint=f"fp-{sha}-{name}",
        labels=list(labels), state="confirmed", registered_at=0.0, structure=structure_, schedule=schedule))
    return version


@pytest.fixture
def reg(registry_url, monkeypatch):
    monkeypatch.setenv("GH_TOKEN", SECRET_VALUE)
    registry = open_registry(registry_url)
    yield registry
    registry.close()


def client(url, token=TOKEN):
    return TestClient(create_app(url, token))


def login(c):
    r = c.post("/login", data={"token": TOKEN, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    return re.search(r'name="csrf" value="([0-9a-f]+)"', c.get("/flows/etl").text).group(1)


def test_flows_list_links_commits_filters_and_shows_schedules(reg, registry_url):
    register(reg, structure_=structure())
    register(reg, name="report", labels=("finance",), sha="d" * 40,
             schedule=IntervalSchedule(interval=__import__("datetime").timedelta(hours=1)).to_dict(),
             storage={"type": "Bitbucket", "project": "ACME", "repo": "flows", "host": "https://bb.example.com",
                      "path": "flows/report.py"})
    done = reg.create_run("etl")
    reg.claim(done.id, "host:1")
    reg.start(done.id, "host:1")
    reg.finish(done.id, "host:1", "failed", "task 'load' failed", "boom\n", {"extract": "Success", "load": "Failed"})
    c = client(registry_url)
    listing = c.get("/api/flows").json()
    by_name = {f["name"]: f for f in listing["flows"]}
    assert listing["total"] == 2
    assert by_name["etl"]["commit_url"] == f"https://github.com/acme/flows/commit/{'a' * 40}"
    assert by_name["report"]["commit_url"] == f"https://bb.example.com/projects/ACME/repos/flows/commits/{'d' * 40}"
    assert by_name["etl"]["last_run"]["state"] == "failed" and by_name["report"]["last_run"] is None
    assert by_name["report"]["scheduled"] and len(by_name["report"]["next_runs"]) == 3
    assert [f["name"] for f in c.get("/api/flows?label=finance").json()["flows"]] == ["report"]
    assert [f["name"] for f in c.get("/api/flows?state=failed").json()["flows"]] == ["etl"]
    assert [f["name"] for f in c.get("/api/flows?state=never run").json()["flows"]] == ["report"]
    page = c.get("/").text
    assert 'href="https://github.com/acme/flows/commit/' in page and "<code>aaaaaaaaaa</code>" in page
    assert "next 20" in page  # the report flow's next run, an ISO time of this century


def test_a_version_shows_storage_files_parameters_graph_and_changes(reg, registry_url):
    register(reg, structure_=structure(mapped=False))
    register(reg, sha="e" * 40, structure_=structure(n_default=5, mapped=True, extra_param=True))
    c = client(registry_url)
    v2 = c.get("/api/flows/etl/versions/2").json()
    assert v2["storage"]["access_token_secret"] == "GH_TOKEN" and "closures" not in v2["storage"]
    assert [f["path"] for f in v2["closure"]] == ["flows/etl.py", "flows/lib/helpers.py"]
    assert {p["name"]: (p["default"], p["required"]) for p in v2["parameters"]} == {"n": (5, False),
                                                                                 "day": (None, True)}
    assert v2["changes"]["lines"] == ["~ task double", "+ edge extract -> double (x, mapped)",
                                      "- edge extract -> double (x)", "+ parameter day (default None)",
                                      "~ parameter n: default 3 -> 5", f"~ commit {'a' * 10} -> {'e' * 10}"]
    assert c.get("/api/flows/etl/versions/1").json()["changes"] is None  # the first version
    page = c.get("/flows/etl/versions/2").text
    assert "<svg" in page and "double (mapped)" in page and "~ parameter n: default 3 -&gt; 5" in page
    for path in ("/", "/flows/etl", "/flows/etl/versions/1", "/flows/etl/versions/2", "/api/flows",
                 "/api/flows/etl/versions/2"):
        assert SECRET_VALUE not in c.get(path).text, path  # the storage names its secret; its value never shows


def test_runs_are_paginated_filtered_and_detailed(reg, registry_url):
    register(reg, structure_=structure())
    for i in range(120):
        reg.create_run("etl", None, {"n": i})
    run = reg.create_run("etl", None, {"n": 7})
    reg.claim(run.id, "host:9", 30)
    reg.start(run.id, "host:9")
    reg.heartbeat(run.id, "host:9", "line one\nline two\n")  # what an agent stores while the run goes on
    c = client(registry_url)
    first = c.get("/api/runs").json()
    assert (first["total"], first["pages"], len(first["runs"])) == (121, 3, 50)
    assert first["runs"][0]["id"] == run.id  # newest first
    third = c.get("/api/runs?page=3").json()
    assert len(third["runs"]) == 21 and third["runs"][-1]["parameters"] == {"n": 0}
    assert c.get("/api/runs?state=running").json()["total"] == 1
    detail = c.get(f"/api/runs/{run.id}").json()
    assert detail["state"] == "running" and detail["logs"] == "line one\nline two\n" and not detail["finished_state"]
    page = c.get("/runs?page=2").text
    assert 'id="prev"' in page and 'id="next"' in page and "page 2 of 3" in page
    assert "line two" in c.get(f"/runs/{run.id}").text


def test_agents_alive_gone_and_their_runs(reg, registry_url):
    register(reg, structure_=structure())
    reg.agent_seen("host:1", ["prod"])
    reg.agent_seen("host:2", [])
    reg._exec("UPDATE agents SET last_seen = ? WHERE name = ?", (time.time() - 300, "host:2"))
    run = reg.create_run("etl")
    reg.claim(run.id, "host:1", 30)
    c = client(registry_url)
    agents = {a["name"]: a for a in c.get("/api/agents").json()["agents"]}
    assert agents["host:1"]["alive"] and agents["host:1"]["labels"] == ["prod"] and agents["host:1"]["runs"] == [run.id]
    assert not agents["host:2"]["alive"]
    assert "gone" in c.get("/agents").text


def test_actions_need_the_token_and_the_forms_csrf(reg, registry_url):
    register(reg, structure_=structure(extra_param=True))
    read_only = client(registry_url, token=None)
    assert read_only.post("/flows/etl/runs", data={"param:day": "x"}).status_code == 403
    assert read_only.post("/api/flows/etl/runs", json={"parameters": {}}).status_code == 403
    assert "read-only" in read_only.get("/flows/etl").text
    c = client(registry_url)
    assert c.post("/api/flows/etl/runs", json={"parameters": {"day": "x"}},
                  headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.post("/flows/etl/runs", data={"param:day": "x"}).status_code == 403  # no session
    assert c.post("/login", data={"token": "wrong"}).status_code == 403
    csrf = login(c)
    forged = c.post("/flows/etl/runs", data={"param:day": "x", "csrf": "0" * 64})
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert reg.count_runs() == 0
    started = c.post("/flows/etl/runs", data={"param:day": '"2026-12-02"', "param:n": "4", "csrf": csrf},
                     follow_redirects=False)
    assert started.status_code == 303
    run_id = int(started.headers["location"].rsplit("/", 1)[1])
    assert reg.get_run(run_id).parameters == {"day": "2026-12-02", "n": 4}
    assert c.post(f"/runs/{run_id}/cancel", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert reg.get_run(run_id).state == "cancelled"
    again = c.post(f"/runs/{run_id}/cancel", data={"csrf": csrf})
    assert again.status_code == 409 and "only a scheduled run can be cancelled" in again.text
    api = c.post("/api/flows/etl/runs", json={"parameters": {"day": "x"}}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert api.status_code == 201 and api.json()["state"] == "scheduled"
    assert TOKEN not in c.get("/flows/etl").text and TOKEN not in c.cookies.get("gitflows_session", "")


def test_a_form_sent_twice_or_a_retried_api_call_starts_one_run(reg, registry_url):
    """A double click (the same form, same hidden submission key) or an API call retried with the same
    Idempotency-Key starts one run; the second answer is the first run. A fresh form is a fresh run."""
    register(reg, structure_=structure(extra_param=True))
    c = client(registry_url)
    login(c)
    page = c.get("/flows/etl").text
    form = {"csrf": re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1),
            "submission": re.search(r'name="submission" value="([0-9a-f]+)"', page).group(1), "param:day": "x"}
    first = c.post("/flows/etl/runs", data=form, follow_redirects=False)
    second = c.post("/flows/etl/runs", data=form, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"] and reg.count_runs() == 1
    fresh = re.search(r'name="submission" value="([0-9a-f]+)"', c.get("/flows/etl").text).group(1)
    assert fresh != form["submission"]
    assert c.post("/flows/etl/runs", data={**form, "submission": fresh}, follow_redirects=False).headers[
        "location"] != first.headers["location"]
    assert reg.count_runs() == 2
    auth = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "deploy-42"}
    a = c.post("/api/flows/etl/runs", json={"parameters": {"day": "x"}}, headers=auth)
    b = c.post("/api/flows/etl/runs", json={"parameters": {"day": "x"}}, headers=auth)
    assert (a.status_code, b.status_code) == (201, 200) and a.json()["id"] == b.json()["id"]
    assert reg.count_runs() == 3
    other = c.post("/api/flows/etl/runs", json={"parameters": {"day": "x"}},
                   headers={**auth, "Idempotency-Key": "deploy-43"})
    assert other.status_code == 201 and reg.count_runs() == 4


def test_wrong_tokens_lock_the_login_out_for_a_while(reg, registry_url, caplog):
    register(reg)
    c = client(registry_url)
    for attempt in range(5):
        assert c.post("/login", data={"token": f"guess-{attempt}"}).status_code == 403
    locked = c.post("/login", data={"token": TOKEN})  # even the right token waits out the lock
    assert locked.status_code == 429 and "too many wrong tokens" in locked.text
    assert 1 <= int(locked.headers["retry-after"]) <= 61
    assert "gitflows_session" not in c.cookies
    assert "guess-" not in caplog.text and TOKEN not in caplog.text
    api = c.post("/api/flows/etl/runs", json={"parameters": {}}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert api.status_code == 429 and "retry-after" in api.headers  # the API's bearer check counts the same
    assert reg.count_runs() == 0
    other = client(registry_url)  # a fresh app: its counters start empty
    for attempt in range(5):
        assert other.post("/api/flows/etl/runs", json={"parameters": {}},
                          headers={"Authorization": f"Bearer guess-{attempt}"}).status_code == 401
    assert other.post("/login", data={"token": TOKEN}).status_code == 429  # wrong bearers lock /login too


@pytest.mark.parametrize("params,message", [
    ({"param:day": "x", "param:n": "1e999999"}, "holds 1e999999, not a finite number"),
    ({"param:n": "3"}, "required parameter(s) not given: day"),
])
def test_bad_parameters_are_refused_on_the_form_with_the_values_kept(reg, registry_url, params, message):
    register(reg, structure_=structure(extra_param=True))
    c = client(registry_url)
    csrf = login(c)
    refused = c.post("/flows/etl/runs", data={**params, "csrf": csrf})
    assert refused.status_code == 400 and message in refused.text.replace("&#39;", "'")
    assert f'value="{params["param:n"]}"' in refused.text  # what was typed is still there
    assert reg.count_runs() == 0
    api = c.post("/api/flows/etl/runs", json={"parameters": {"nope": 1}}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert api.status_code == 400 and "has no parameter 'nope'; it takes: day, n" in api.json()["error"]


def test_unknown_things_are_404_and_names_are_escaped(reg, registry_url):
    register(reg, name="<script>alert(1)</script>", structure_=structure())
    c = client(registry_url)
    page = c.get("/").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert c.get("/flows/nope").status_code == 404 and "not registered" in c.get("/flows/nope").text
    assert c.get("/api/runs/999").status_code == 404 and "run 999" in c.get("/api/runs/999").json()["error"]
    assert c.get("/flows/etl/versions/9").status_code == 404
    redirect = c.post("/login", data={"token": TOKEN, "next": "//evil.example/"}, follow_redirects=False)
    assert redirect.headers["location"] == "/"  # never an open redirect


def test_a_registry_that_goes_away_is_a_503_saying_so_then_comes_back(reg, registry_url, tmp_path):
    register(reg, structure_=structure())
    c = client(registry_url)
    assert c.get("/").status_code == 200
    if registry_url.startswith("sqlite"):
        path = registry_url.removeprefix("sqlite:///")
        moved = tmp_path / "moved.db"
        __import__("os").rename(path, moved)
        page, api = c.get("/"), c.get("/api/flows")
        __import__("os").rename(moved, path)
    else:
        name = registry_url.rsplit("/", 1)[1]
        import psycopg

        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True)
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        page, api = c.get("/"), c.get("/api/flows")
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        admin.close()
    assert page.status_code == 503 and "registry" in page.text
    assert api.status_code == 503 and "registry" in api.json()["error"]
    assert c.get("/").status_code == 200  # back, without restarting the page


def test_the_ui_command_serves_the_page_on_127_0_0_1(reg, registry_url, tmp_path):
    """`gitflows ui` as a user starts it: the token named by GITFLOWS_UI_TOKEN, 127.0.0.1, the API answering."""
    import json
    import os
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    register(reg, structure_=structure())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GITFLOWS_REGISTRY": registry_url, "GITFLOWS_UI_TOKEN": "MY_UI_TOKEN",
           "MY_UI_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "gitflows", "ui", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/flows", timeout=5) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
                time.sleep(0.2)
        assert [f["name"] for f in body["flows"]] == ["etl"]
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/flows/etl/runs", method="POST",
                                         data=b'{"parameters": {"n": 2}}',
                                         headers={"Authorization": f"Bearer {TOKEN}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 201
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/ (actions need the token)" in err and TOKEN not in err
    assert reg.runs()[0].parameters == {"n": 2}


def test_the_ui_command_without_a_registry_yet_starts_and_says_so(tmp_path):
    from ..conftest import run_cli

    help_text = run_cli("ui", "--help").stdout
    assert "--token-secret" in help_text and "127.0.0.1" in help_text
    import socket

    with socket.socket() as taken:  # a port in use: the server cannot start, so the command returns
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("ui", "--port", str(port), env={"GITFLOWS_REGISTRY": str(tmp_path / "none.db")})
    assert "no registry at" in result.stderr and "the pages say so until something is registered" in result.stderr
    assert result.returncode != 0 and "address already in use" in result.stderr.lower()


def test_changes_name_storage_settings_and_say_when_the_flow_cannot_be_compared(reg, registry_url):
    register(reg)  # registered before structures were kept: none recorded
    register(reg, sha="f" * 40, structure_=structure(),
             storage={"type": "GitHub", "repo": "acme/flows", "path": "flows/etl.py", "ref": "dev",
                      "access_token_secret": "GH_TOKEN", "secrets": ["GH_TOKEN"]})
    c = client(registry_url)
    changes = c.get("/api/flows/etl/versions/2").json()["changes"]
    assert not changes["flow_known"]
    assert "~ storage ref: None -> 'dev'" in changes["lines"]
    page = c.get("/flows/etl/versions/2").text
    assert "Tasks, edges and parameters are not compared" in page and "~ storage ref: None -&gt; &#39;dev&#39;" in page
    assert "No graph: this version was registered before" in c.get("/flows/etl/versions/1").text


def test_garbage_in_what_schema_4_stores_leaves_every_page_working(reg, registry_url):
    """A hand-edited or damaged registry: a structure, task states, agent labels and a schedule that do not parse
    are shown as unknown; nothing answers 500."""
    register(reg, structure_=structure())
    run = reg.create_run("etl")
    reg.claim(run.id, "host:1")
    reg.start(run.id, "host:1")
    reg.finish(run.id, "host:1", "success", None, "ok\n", {"extract": "Success"})
    reg.agent_seen("host:1", [])
    for sql, args in (("UPDATE flow_versions SET structure = ?", ("{not json",)),
                      ("UPDATE flow_versions SET schedule = ?", ('{"clocks": [{"type": "IntervalClock"}]}',)),
                      ("UPDATE runs SET tasks = ?", ("[1, 2",)), ("UPDATE agents SET labels = ?", ("nope",))):
        reg._exec(sql, args)
    c = client(registry_url)
    for path in ("/", "/flows/etl", "/flows/etl/versions/1", "/runs", f"/runs/{run.id}", "/agents", "/api/flows",
                 f"/api/runs/{run.id}", "/api/agents"):
        assert c.get(path).status_code == 200, path
    assert c.get("/api/flows/etl/versions/1").json()["parameters"] is None
    assert c.get(f"/api/runs/{run.id}").json()["tasks"] == {}
    assert c.get("/api/agents").json()["agents"][0]["labels"] == []
    assert c.get("/api/flows").json()["flows"][0]["next_runs"] == []
