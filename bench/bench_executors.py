"""A map over 1,000 items of a 10 ms sleep task on each executor (issue 16's target), and the overhead per
mapped child: (wall time - ideal time) / children, where ideal = 1,000 x 10 ms / parallel slots.

Executors: LocalExecutor (one after another), LocalDaskExecutor(threads, 8), and a dask.distributed cluster of
2 worker processes x 4 threads on 127.0.0.1 (started by the bench; its start-up is not counted). Each is
measured RUNS times after one warm-up run; the median is reported.

Run: .venv/bin/python bench/bench_executors.py [ITEMS]   (default 1000)
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitflows import Flow, task, unmapped  # noqa: E402
from gitflows.executors import DaskExecutor, LocalDaskExecutor, LocalExecutor  # noqa: E402

RUNS = 3
PAUSE = 0.010


@task
def sleepy(x, pause):
    time.sleep(pause)
    return x


@task
def count(xs):
    return len(xs)


def measure(flow, executor, runs):
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        state = flow.run(executor=executor)
        times.append(time.perf_counter() - start)
        assert state.is_successful(), state
    return statistics.median(times[1:])


def main() -> None:
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with Flow("map-bench") as flow:
        count(sleepy.map(list(range(items)), pause=unmapped(PAUSE)))
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=4, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    try:
        cases = [("LocalExecutor", LocalExecutor(), 1, 1),
                 ("LocalDaskExecutor(threads, 8)", LocalDaskExecutor("threads", num_workers=8), 8, RUNS),
                 ("Dask cluster, 2 workers x 4 threads", DaskExecutor(address=cluster.scheduler_address), 8, RUNS)]
        print(f"map over {items} items of a {PAUSE * 1e3:.0f} ms task (machine: {__import__('os').cpu_count()} CPUs)\n")
        print(f"{'executor':<38} {'wall':>8} {'ideal':>8} {'overhead/child':>15}")
        for name, executor, slots, runs in cases:
            wall = measure(flow, executor, runs)
            ideal = items * PAUSE / slots
            print(f"{name:<38} {wall:>7.2f}s {ideal:>7.2f}s {(wall - ideal) / items * 1e3:>12.3f} ms", flush=True)
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
