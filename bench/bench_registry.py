"""Registry figures: registering 800 flows (cold, then unchanged), and runs per second completed by
1, 4 and 8 agent processes, on SQLite and on PostgreSQL (127.0.0.1:5432, database created and dropped).

Run: .venv/bin/python bench/bench_registry.py [--runs 40] [--flows 800] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gitflows.register import register_commit  # noqa: E402
from gitflows.registry import open_registry  # noqa: E402

FLOW = '''from gitflows import Flow, Parameter, task
from gitflows.storage import Git
from lib.helpers import scale


@task
def work(n):
    return scale(list(range(n)), {i})


with Flow("flow-{i}", storage=Git(flow_path="flows/flow_{i}.py", repo="flows", repo_host="file://{remote}")) as flow:
    work(Parameter("n", default=3))
'''
ENV = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.com", GIT_COMMITTER_NAME="b",
           GIT_COMMITTER_EMAIL="b@example.com")


def sh(*args: str, cwd: Path) -> str:
    return subprocess.run(args, cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(base: Path, flows: int) -> tuple[Path, str]:
    remote = base / "remote"
    sh("git", "init", "-q", "--bare", "-b", "main", str(remote / "flows.git"), cwd=base)
    work = base / "work"
    (work / "flows" / "lib").mkdir(parents=True)
    sh("git", "init", "-q", "-b", "main", cwd=work)
    (work / "flows" / "lib" / "helpers.py").write_text("def scale(rows, f):\n    return [r * f for r in rows]\n")
    for i in range(flows):
        (work / "flows" / f"flow_{i}.py").write_text(FLOW.format(i=i, remote=remote))
    sh("git", "add", "-A", cwd=work)
    sh("git", "commit", "-q", "-m", "flows", cwd=work)
    sh("git", "push", "-q", str(remote / "flows.git"), "main", cwd=work)
    return work, sh("git", "rev-parse", "HEAD", cwd=work)


def bench(url: str, label: str, flows: int, runs: int, rows: list[tuple[str, str, str]]) -> None:
    base = Path(tempfile.mkdtemp())
    os.environ["GITFLOWS_CACHE_DIR"] = str(base / "cache")
    work, sha = make_repo(base, flows)
    registry = open_registry(url)
    start = time.perf_counter()
    outcomes = register_commit(registry, str(work), sha, None, state="confirmed")
    cold = time.perf_counter() - start
    assert sum(o.created for o in outcomes) == flows, [o.message for o in outcomes if not o.created][:3]
    rows.append((label, f"register {flows} flows, cold", f"{cold:.2f} s ({flows / cold:.0f} flows/s)"))
    start = time.perf_counter()
    outcomes = register_commit(registry, str(work), sha, None, state="confirmed")
    warm = time.perf_counter() - start
    assert not any(o.created for o in outcomes)
    rows.append((label, f"register {flows} flows, nothing changed", f"{warm:.2f} s"))
    env = {**os.environ, "GITFLOWS_REGISTRY": url, "PYTHONPATH": str(ROOT)}
    cases = [(1, 1, False), (4, 1, False), (8, 1, False), (1, 1, True), (1, 4, True), (4, 1, True), (4, 2, True)]
    for agents, concurrency, warm in cases:
        for i in range(runs):
            registry.create_run(f"flow-{i % flows}", parameters={"n": 2})
        options = ["--concurrency", str(concurrency)] + (["--warm"] if warm else [])
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-m", "gitflows", "agent", "--once", "--poll", "0.05", *options],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(agents)]
        for p in procs:
            p.wait()
        took = time.perf_counter() - start
        batch = registry.runs(limit=runs)
        done = [r for r in batch if r.state == "success"]
        assert len(done) == runs, f"{len(done)} of {runs} succeeded"
        waits = sorted((r.started_at or r.due_at) - r.due_at for r in done)
        p50, p99 = waits[len(waits) // 2], waits[min(len(waits) - 1, int(len(waits) * 0.99))]
        what = f"{runs} runs, {agents} agent(s) x{concurrency}" + (" --warm" if warm else "")
        rows.append((label, what, f"{took:.2f} s ({runs / took:.1f} runs/s; scheduled->running p50 {p50:.2f} s, "
                                  f"p99 {p99:.2f} s, agent start-up included)"))
    registry.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=800)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    bench(f"sqlite:///{tempfile.mkdtemp()}/registry.db", "SQLite", args.flows, args.runs, rows)
    if not args.no_postgres:
        import psycopg

        name = f"gitflows_bench_{uuid.uuid4().hex[:8]}"
        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True)
        admin.execute(f"CREATE DATABASE {name}")
        try:
            bench(f"postgresql://postgres@127.0.0.1:5432/{name}", "PostgreSQL", args.flows, args.runs, rows)
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print(f"{'registry':<11} {'what':<40} result")
    for label, what, result in rows:
        print(f"{label:<11} {what:<40} {result}")


if __name__ == "__main__":
    main()
