"""Requests and wall time per get_flow, per API host, for a flow with 3 sibling modules.

Each fake API runs as a real HTTP server on 127.0.0.1 (answers built from a real git repo), so
times include real HTTP round trips on loopback but no internet latency: on a real host, each
request costs one more round trip (typically 50-300 ms), which is why the request counts matter.
CodeCommit's fake answers inside botocore (no HTTP), so only its call counts are comparable.

Then, for repositories of 100, 5,000 and 30,000 files (the flow plus unrelated modules spread over
~500 folders, some beside the flow), the cold load of the pinned script on every host next to what
Prefect 1.4.1 did for the same script (one file, no siblings, no verification): the requests must
not grow with the repository.

Last, the largest size again with a delay before every answer (``--rtt MS``, default 50; 0 skips it): on a
real network the request count, not loopback time, decides who is faster.

Run: .venv/bin/python bench/bench_api_hosts.py [--rtt MS] [SIZE ...]   (default sizes: 100 5000 30000)
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gitflows import Flow  # noqa: E402
from gitflows.cache import Cache  # noqa: E402
from gitflows.storage import from_dict  # noqa: E402
from gitflows.storage.bitbucket import Bitbucket  # noqa: E402
from gitflows.storage.codecommit import CodeCommit  # noqa: E402
from gitflows.storage.github import GitHub  # noqa: E402
from gitflows.storage.gitlab import GitLab  # noqa: E402
from tests.fakes.bitbucket_api import FakeBitbucketCloud, FakeBitbucketServer  # noqa: E402
from tests.fakes.github_api import FakeGitHub  # noqa: E402
from tests.fakes.gitlab_api import FakeGitLab  # noqa: E402
from tests.fakes.gitrepo import FLOW_WITH_HELPERS, GitRepo  # noqa: E402
from tests.fakes.serve import NO_MOCK, serve  # noqa: E402

TOKEN = "bench-token-value-0123456789"
RUNS = 5


def measure(fn, fake):
    """Median seconds and requests of fn() over RUNS runs."""
    times, counts = [], []
    for _ in range(RUNS):
        before = len(fake.requests if hasattr(fake, "requests") else fake.calls)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        counts.append(len(fake.requests if hasattr(fake, "requests") else fake.calls) - before)
    return statistics.median(times), max(counts)


def cold(fn):
    def run():
        shutil.rmtree(Cache().root, ignore_errors=True)
        fn()
    return run


def bench_host(name, make_storage, fake, rows):
    # cold, branch ref, nothing cached, nothing recorded
    t, n = measure(cold(lambda: make_storage("trunk").get_flow(flow_name="etl")), fake)
    rows.append((name, "cold, branch ref", n, t))
    sha = repo.v1
    t, n = measure(cold(lambda: make_storage(sha).get_flow(flow_name="etl")), fake)
    rows.append((name, "cold, pinned SHA", n, t))
    built = make_storage("trunk")
    built.add_flow(Flow("etl"))
    built.build()
    data = built.serialize()
    t, n = measure(cold(lambda: from_dict(data).get_flow()), fake)
    rows.append((name, "cold, registered (SHA + closure)", n, t))
    storage = from_dict(data)
    storage.get_flow()
    t, n = measure(lambda: storage.get_flow(), fake)
    rows.append((name, "warm (same machine)", n, t))


def prefect1_github(base):
    """What Prefect 1's GitHub storage did on every get_flow (PyGithub defaults, no cache, no siblings)."""
    from github import Auth, Github

    client = Github(auth=Auth.Token(TOKEN), base_url=base)  # default: 0.25 s between requests
    r = client.get_repo("acme/flows")
    commit = r.get_commit("trunk")
    r.get_contents("flows/etl.py", ref=commit.sha).decoded_content


def padded(size: int) -> dict[str, str]:
    """FLOW_WITH_HELPERS plus unrelated modules up to *size* files, over ~500 folders (some beside the flow)."""
    files = dict(FLOW_WITH_HELPERS)
    for i in range(size - len(files)):
        folder = ["flows", "flows/lib", f"pkg{i % 97}", f"pkg{i % 97}/sub{i % 5}", "docs"][i % 5]
        files[f"{folder}/m{i}.py"] = f"X = {i}\n"
    return files


def prefect1_gitlab(base, sha):
    """Prefect 1's GitLab storage: the project, then the file (python-gitlab)."""
    import gitlab

    project = gitlab.Gitlab(base, private_token=TOKEN).projects.get("acme/flows")
    project.files.get(file_path="flows/etl.py", ref=sha).decode()


def prefect1_bitbucket_server(base, sha):
    """Prefect 1's Bitbucket storage (Server): one raw read of the file."""
    import requests

    requests.get(f"{base}/rest/api/1.0/projects/ACME/repos/flows/raw/flows/etl.py", params={"at": sha},
                 headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).raise_for_status()


def registered(make):
    """The serialized storage a registration records for etl (SHA + closure), built once."""
    storage = make()
    storage.add_flow(Flow("etl"))
    storage.build()
    return storage.serialize()


def by_size(sizes: list[int], tmp: Path, latency: float = 0.0) -> Iterator[tuple[int, str, str, int, float]]:
    """Rows as they are measured. The fakes page as the real APIs allow at most (GitLab 100 per page,
    Bitbucket Server 1,000, Bitbucket Cloud 100); *latency* seconds pass before each answer."""
    for size in sizes:
        big = GitRepo(tmp / f"repo-{size}-{latency}", default_branch="trunk")
        sha = big.commit(padded(size))
        gh, _ = serve(lambda base, r=big: FakeGitHub(NO_MOCK, r, base=base + "/api/v3", token=TOKEN), latency)
        gl, _ = serve(lambda base, r=big: FakeGitLab(NO_MOCK, r, base=base, token=TOKEN), latency)
        bs, _ = serve(lambda base, r=big: FakeBitbucketServer(NO_MOCK, r, base=base, token=TOKEN, page_cap=1000),
                      latency)
        bsr, _ = serve(lambda base, r=big: FakeBitbucketServer(NO_MOCK, r, base=base, token=TOKEN, page_cap=1000),
                       latency)
        bsr.git = "off"  # a server whose git cannot answer (before 7.13, partial clones off): REST after one try
        bc, _ = serve(lambda base, r=big: FakeBitbucketCloud(NO_MOCK, r, base=base, username="robot-user",
                                                               password=TOKEN, page_cap=100), latency)
        cases = [
            ("GitHub", gh, lambda: GitHub("acme/flows", "flows/etl.py", ref=sha, access_token_secret="BENCH_TOKEN",
                                          base_url=gh.base),
             lambda: prefect1_github(gh.base)),
            ("GitLab", gl, lambda: GitLab("acme/flows", host=gl.base, path="flows/etl.py", ref=sha,
                                          access_token_secret="BENCH_TOKEN"),
             lambda: prefect1_gitlab(gl.base, sha)),
            ("Bitbucket Server", bs, lambda: Bitbucket("ACME", "flows", host=bs.base, path="flows/etl.py", ref=sha,
                                                       access_token_secret="BENCH_TOKEN"),
             lambda: prefect1_bitbucket_server(bs.base, sha)),
            ("Bitbucket Server/REST", bsr, lambda: Bitbucket("ACME", "flows", host=bsr.base, path="flows/etl.py",
                                                            ref=sha, access_token_secret="BENCH_TOKEN"),
             None),
            ("Bitbucket Cloud", bc, lambda: Bitbucket("ACME", "flows", workspace="acme", host=bc.base,
                                                      path="flows/etl.py", ref=sha, cloud_username_secret="BENCH_USER",
                                                      cloud_app_password_secret="BENCH_TOKEN"),
             None),
        ]
        for name, fake, make, theirs in cases:
            t, n = measure(cold(lambda make=make: make().get_flow(flow_name="etl")), fake)
            yield size, name, "gitflows, cold, pinned SHA", n, t
            data = registered(make)
            t, n = measure(cold(lambda data=data: from_dict(data).get_flow()), fake)
            yield size, name, "gitflows, registered", n, t
            if theirs is not None:
                t, n = measure(theirs, fake)
                yield size, name, "Prefect 1.4.1 (script only)", n, t


def main() -> None:
    global repo
    args = sys.argv[1:]
    rtt_ms = 50.0
    if "--rtt" in args:  # --rtt MS: the round trip the last table adds to every request (0: no such table)
        at = args.index("--rtt")
        rtt_ms = float(args[at + 1])
        del args[at:at + 2]
    sizes = [int(a) for a in args] or [100, 5_000, 30_000]
    tmp = Path(tempfile.mkdtemp())
    os.environ["GITFLOWS_CACHE_DIR"] = str(tmp / "cache")
    os.environ["BENCH_TOKEN"] = TOKEN
    os.environ["BENCH_USER"] = "robot-user"
    repo = GitRepo(tmp / "repo", default_branch="trunk")
    repo.v1 = repo.commit(FLOW_WITH_HELPERS)
    rows: list[tuple[str, str, int, float]] = []

    gh, _ = serve(lambda base: FakeGitHub(NO_MOCK, repo, base=base + "/api/v3", token=TOKEN))
    bench_host("GitHub", lambda ref: GitHub("acme/flows", "flows/etl.py", ref=ref, access_token_secret="BENCH_TOKEN",
                                            base_url=gh.base), gh, rows)
    t, n = measure(lambda: prefect1_github(gh.base), gh)
    rows.append(("GitHub", "Prefect 1 way (every get_flow)", n, t))

    gl, _ = serve(lambda base: FakeGitLab(NO_MOCK, repo, base=base, token=TOKEN))
    bench_host("GitLab", lambda ref: GitLab("acme/flows", host=gl.base, path="flows/etl.py", ref=ref,
                                            access_token_secret="BENCH_TOKEN"), gl, rows)
    bs, _ = serve(lambda base: FakeBitbucketServer(NO_MOCK, repo, base=base, token=TOKEN))
    bench_host("Bitbucket Server", lambda ref: Bitbucket("ACME", "flows", host=bs.base, path="flows/etl.py", ref=ref,
                                                         access_token_secret="BENCH_TOKEN"), bs, rows)
    bc, _ = serve(lambda base: FakeBitbucketCloud(NO_MOCK, repo, base=base, username="robot-user", password=TOKEN))
    bench_host("Bitbucket Cloud", lambda ref: Bitbucket("ACME", "flows", workspace="acme", host=bc.base,
                                                        path="flows/etl.py", ref=ref, cloud_username_secret="BENCH_USER",
                                                        cloud_app_password_secret="BENCH_TOKEN"), bc, rows)

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIABENCH")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    from tests.fakes.codecommit_api import FakeCodeCommit

    cc = FakeCodeCommit(repo)
    bench_host("CodeCommit (calls)", lambda ref: CodeCommit("flows", "flows/etl.py", commit=ref,
                                                            client_options={"region_name": "us-east-1",
                                                                            "endpoint_url": "http://127.0.0.1:1"}),
               cc, rows)

    print("flow: flows/etl.py importing 3 sibling modules (closure of 5 files)\n")
    print(f"{'host':<20} {'case':<34} {'requests':>8} {'median':>11}")
    for host, case, n, t in rows:
        shown = f"{t * 1e3:.1f} ms" if t >= 1e-3 else f"{t * 1e6:.0f} µs"
        print(f"{host:<20} {case:<34} {n:>8} {shown:>11}")
    print("\ncold load of the pinned script by repository size\n")
    print(f"{'files':>6} {'host':<21} {'case':<30} {'requests':>8} {'median':>11}")
    for size, host, case, n, t in by_size(sizes, tmp):
        print(f"{size:>6} {host:<21} {case:<30} {n:>8} {t * 1e3:>8.1f} ms", flush=True)
    if rtt_ms:
        print(f"\nthe same with {rtt_ms:.0f} ms before every answer (a network round trip), {max(sizes)} files\n")
        print(f"{'files':>6} {'host':<21} {'case':<30} {'requests':>8} {'median':>11}")
        for size, host, case, n, t in by_size([max(sizes)], tmp, rtt_ms / 1000):
            print(f"{size:>6} {host:<21} {case:<30} {n:>8} {t * 1e3:>8.1f} ms", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
