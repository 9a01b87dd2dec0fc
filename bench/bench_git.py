"""Git storage: cold and warm get_flow against repos of growing size, vs the Prefect 1 way and the git CLI.

Generates small / medium / large repositories (the large one: 30,000 files, ~300 MB at HEAD, 1,000
commits) with `git fast-import`, serves each with git http-backend on 127.0.0.1 (filter and
allowAnySHA1InWant on), and prints medians of wall time and bytes the server sent for:

- gitflows cold: Git storage, pinned SHA (and a branch), empty cache, a fresh storage each run
  (the loader: commit without blobs, then the closure's blobs by id; one POST each over smart HTTP);
- gitflows warm: the same, cache filled (no network);
- Prefect 1 way: dulwich porcelain.clone(depth=1) — what Prefect 1's Git storage did on every load;
- git CLI: `git clone --depth 1 --filter=blob:none --sparse` then `git sparse-checkout add flows`.

Run: .venv/bin/python bench/bench_git.py [--sizes small,medium,large] [--runs 3]
Repositories are kept in $TMPDIR/gitflows-bench between runs.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gitflows.storage.git import Git  # noqa: E402
from tests.fakes.gitrepo import FLOW_WITH_HELPERS  # noqa: E402
from tests.servers.git_http import GitHTTPServer, configure  # noqa: E402

SIZES = {"small": (100, 10_000, 10), "medium": (3_000, 10_000, 100), "large": (30_000, 10_000, 1_000)}
ENV = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.com", GIT_COMMITTER_NAME="b",
           GIT_COMMITTER_EMAIL="b@example.com")


def generate(path: Path, files: int, size: int, commits: int) -> None:
    """A bare repo: one commit with the flow and *files* data files of *size* bytes, then small commits."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "trunk", str(path)], check=True)
    proc = subprocess.Popen(["git", "-C", str(path), "fast-import", "--quiet"], stdin=subprocess.PIPE, env=ENV)
    out = proc.stdin
    assert out is not None
    rng = random.Random(42)
    mark = 0
    entries = []
    for rel, text in FLOW_WITH_HELPERS.items():
        mark += 1
        data = text.encode()
        out.write(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data))
        entries.append((rel, mark))
    for i in range(files):
        mark += 1
        data = base64.b64encode(rng.randbytes(size * 3 // 4))
        out.write(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data))
        entries.append((f"data/d{i % 100:02d}/f{i:05d}.txt", mark))
    when = 1_700_000_000
    out.write(b"commit refs/heads/trunk\ncommitter b <b@example.com> %d +0000\ndata 7\ninitial\n" % when)
    for rel, m in entries:
        out.write(b"M 100644 :%d %s\n" % (m, rel.encode()))
    for c in range(1, commits):
        data = f"change {c}\n".encode()
        out.write(b"commit refs/heads/trunk\ncommitter b <b@example.com> %d +0000\ndata 6\nchange\n"
                  b"M 100644 inline data/changes/c%04d.txt\ndata %d\n%s\n" % (when + c, c % 50, len(data), data))
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "-C", str(path), "gc", "-q"], check=True)
    configure(str(path), allow_filter=True, allow_any_sha1=True)


def median_of(runs: int, fn, server: GitHTTPServer) -> tuple[float, int, int]:
    """Median seconds and bytes sent, and the most requests, of fn() over *runs* runs."""
    times, sent, counts = [], [], []
    for _ in range(runs):
        server.stats.reset()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        sent.append(server.stats.bytes_sent)
        counts.append(len(server.stats.requests))
    return statistics.median(times), int(statistics.median(sent)), max(counts)


def main() -> None:
    # the Git storage made from a clone-URL secret says, as Prefect 1 did, what it ignores: once is enough
    logging.getLogger("gitflows").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.gettempdir()) / "gitflows-bench"
    base.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp())
    os.environ["GITFLOWS_CACHE_DIR"] = str(work / "cache")
    rows = []
    for name in args.sizes.split(","):
        files, size, commits = SIZES[name]
        repo = base / name / "flows.git"
        if not repo.exists():
            print(f"generating {name}: {files} files x {size} bytes, {commits} commits ...", file=sys.stderr)
            generate(repo, files, size, commits)
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "trunk"], capture_output=True, text=True,
                              check=True).stdout.strip()
        server = GitHTTPServer(str(repo.parent))
        url = f"{server.url}/flows.git"
        os.environ["BENCH_CLONE_URL"] = url
        storage = Git("flows/etl.py", "acme/flows", git_clone_url_secret_name="BENCH_CLONE_URL", commit=head,
                      flow_name="etl")

        def cold() -> None:  # a fresh storage (and host) and an empty cache: another machine
            shutil.rmtree(work / "cache", ignore_errors=True)
            fresh = Git("flows/etl.py", "acme/flows", git_clone_url_secret_name="BENCH_CLONE_URL", commit=head,
                        flow_name="etl")
            assert fresh.get_flow().run().results["transform"] == "v1:0,10,20"

        def cold_branch() -> None:
            shutil.rmtree(work / "cache", ignore_errors=True)
            fresh = Git("flows/etl.py", "acme/flows", git_clone_url_secret_name="BENCH_CLONE_URL", branch_name="trunk",
                        flow_name="etl")
            assert fresh.get_flow().run().results["transform"] == "v1:0,10,20"

        def warm() -> None:
            storage.get_flow()

        def prefect1() -> None:
            from dulwich import porcelain

            target = work / "p1"
            shutil.rmtree(target, ignore_errors=True)
            porcelain.clone(url, str(target), depth=1, checkout=True, errstream=open(os.devnull, "wb"))

        def git_cli() -> None:
            target = work / "cli"
            shutil.rmtree(target, ignore_errors=True)
            subprocess.run(["git", "clone", "-q", "--depth", "1", "--filter=blob:none", "--sparse", url, str(target)],
                           check=True, env=ENV)
            subprocess.run(["git", "-C", str(target), "sparse-checkout", "add", "flows"], check=True, env=ENV)

        cold()
        storage.get_flow()
        for label, fn in (("gitflows cold (pinned SHA)", cold), ("gitflows cold (branch)", cold_branch),
                          ("gitflows warm", warm),
                          ("Prefect 1 way: dulwich clone depth 1", prefect1),
                          ("git clone --depth 1 --filter=blob:none --sparse", git_cli)):
            t, sent, n = median_of(args.runs, fn, server)
            rows.append((name, label, t, sent, n))
            print(f"{name:<7} {label:<48} {n:>4} {t:>9.3f} s {sent / 1e6:>10.3f} MB", file=sys.stderr)
        server.stop()
        du = subprocess.run(["git", "-C", str(repo), "count-objects", "-vH"], capture_output=True, text=True).stdout
        rows.append((name, "repo: " + " ".join(line for line in du.splitlines() if "size-pack" in line), 0, 0, 0))
    print(f"\n{'repo':<7} {'how':<48} {'requests':>8} {'median':>11} {'sent':>13}")
    for name, label, t, sent, n in rows:
        if label.startswith("repo:"):
            print(f"{name:<7} {label}")
            continue
        shown = f"{t:.3f} s" if t >= 0.01 else f"{t * 1e3:.2f} ms"
        print(f"{name:<7} {label:<48} {n:>8} {shown:>11} {sent / 1e6:>10.3f} MB")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
