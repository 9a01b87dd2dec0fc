"""The web page at scale: 1,000 flows and 10,000 runs, each page and API answer timed over real HTTP
(uvicorn on 127.0.0.1), on SQLite and PostgreSQL. Issue 17's target: every page under 200 ms.

Run: .venv/bin/python bench/bench_ui.py [sqlite|postgresql ...]   (default: both; PostgreSQL on
127.0.0.1:5432, trust auth, as in the tests)
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitflows import Flow, Parameter, task  # noqa: E402
from gitflows.registry import FlowVersion, open_registry  # noqa: E402

FLOWS, RUNS, REPEAT = 1000, 10_000, 7


@task
def extract(n):
    return list(range(n))


@task
def load(rows):
    return len(rows)


def fill(url: str) -> None:
    with Flow("template") as flow:
        load.map(extract(Parameter("n", default=3)))
    structure = flow.structure()
    reg = open_registry(url)
    for i in range(FLOWS):
        reg.register(FlowVersion(
            name=f"flow-{i:04}", version=0, storage={"type": "GitHub", "repo": "acme/flows", "path": f"flows/f{i}.py"},
            repo="acme/flows", path=f"flows/f{i}.py", requested_ref="main", sha=f"{i:040x}",
            closure=[[f"flows/f{i}.py", "b" * 40]], fingerprint=f"fp{i}", labels=["team-a" if i % 2 else "team-b"],
            state="confirmed", registered_at=0.0, structure=structure))
    states = ["success", "failed", "success", "success", "cancelled"]
    conn = reg.conn()
    now = time.time()
    rows = [(f"flow-{i % FLOWS:04}", 1, json.dumps({"n": i}), states[i % len(states)], 1, 2, "bench:1", now, now, now, now,
             "hello\n" * 20) for i in range(RUNS)]
    reg.dialect.begin(conn)
    insert = ("INSERT INTO runs (flow_name, version, parameters, state, attempts, max_attempts, agent, heartbeat, "
              "created_at, due_at, finished_at, logs) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")
    conn.cursor().executemany(reg.dialect.q(insert), rows)
    conn.execute("COMMIT")
    for a in range(5):
        reg.agent_seen(f"bench:{a}", ["team-a"])
    reg.close()


def serve(url: str) -> tuple[str, object]:
    import uvicorn

    from gitflows.ui import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(url, "bench-token"), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def timed(base: str, path: str) -> tuple[float, float, int]:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=30) as response:
            body = response.read()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]), max(times[1:]), len(body)


PATHS = ["/", "/?page=20", "/?label=team-a", "/flows/flow-0500", "/flows/flow-0500/versions/1", "/runs",
         "/runs?page=200", "/runs?state=failed&page=10", "/runs?flow=flow-0007", "/runs/5000", "/agents",
         "/api/flows", "/api/runs?page=100", "/api/runs/9999"]


def bench(kind: str) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'registry.db'}"
        admin = None
    else:
        import psycopg

        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True)
        name = f"bench_ui_{uuid.uuid4().hex[:8]}"
        admin.execute(f"CREATE DATABASE {name}")
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        started = time.perf_counter()
        fill(url)
        print(f"\n{kind}: {FLOWS} flows, {RUNS} runs written in {time.perf_counter() - started:.1f}s")
        base, server = serve(url)
        print(f"{'page':<34} {'median':>9} {'max':>9} {'bytes':>8}")
        for path in PATHS:
            median, worst, size = timed(base, path)
            flag = "" if worst < 0.2 else "   over 200 ms"
            print(f"{path:<34} {median * 1e3:>7.1f}ms {worst * 1e3:>7.1f}ms {size:>8}{flag}", flush=True)
        server.should_exit = True
    finally:
        if admin is not None:
            time.sleep(0.5)
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.close()


if __name__ == "__main__":
    for kind in sys.argv[1:] or ["sqlite", "postgresql"]:
        bench(kind)
