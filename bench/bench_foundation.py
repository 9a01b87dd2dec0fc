"""Foundation figures: script extraction, pickle envelope, cache hits, `gitflows check` on many files.

Run: .venv/bin/python bench/bench_foundation.py   (prints a table; not a test)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitflows import extract_flow_from_file, flow_from_bytes_pickle, flow_to_bytes_pickle  # noqa: E402
from gitflows.cache import Cache  # noqa: E402

FLOW = """
from gitflows import Flow, Parameter, task
from gitflows.storage.local import Local
from lib.helpers import scale

@task
def extract(n):
    return list(range(n))

@task
def transform(rows):
    return scale(rows, 2)

@task
def load(rows):
    return len(rows)

with Flow("flow-{i}", storage=Local(path="flows/flow_{i}.py", stored_as_script=True)) as flow:
    load(transform(extract(Parameter("n", default=3))))
"""


def timeit(fn, n=50):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "flows" / "lib").mkdir(parents=True)
        (root / "flows" / "lib" / "helpers.py").write_text("def scale(rows, f):\n    return [r * f for r in rows]\n")
        for i in range(500):
            (root / "flows" / f"flow_{i}.py").write_text(FLOW.format(i=i))
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        subprocess.run(["git", "remote", "add", "origin", "https://github.com/acme/flows.git"], cwd=root, check=True)
        subprocess.run(["git", "add", "-A"], cwd=root, check=True)  # check scans tracked files for names
        script = str(root / "flows" / "flow_0.py")
        rows = []
        rows.append(("extract_flow_from_file (1 flow, 1 sibling)", timeit(lambda: extract_flow_from_file(script))))
        flow = extract_flow_from_file(script)
        data = flow_to_bytes_pickle(flow)
        rows.append(("flow_to_bytes_pickle", timeit(lambda: flow_to_bytes_pickle(flow))))
        rows.append(("flow_from_bytes_pickle (verify + unpickle)", timeit(lambda: flow_from_bytes_pickle(data))))
        cache = Cache(root / "cache")
        blob = cache.put_blob(FLOW.encode())
        rows.append(("cache hit: read + verify one blob", timeit(lambda: cache.get_blob(blob), 500)))
        cache.materialise(("github", "acme/flows", "a" * 40), {"flows/etl.py": b"x"})
        rows.append(("cache hit: materialise existing tree",
                     timeit(lambda: cache.materialise(("github", "acme/flows", "a" * 40), {}), 500)))
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        cmd = [sys.executable, "-m", "gitflows", "check"]

        def check(files):
            subprocess.run(cmd + files, cwd=root, env=env, check=True, capture_output=True)

        rows.append(("gitflows check, 1 changed file (whole process)", timeit(lambda: check(["flows/flow_7.py"]), 5)))
        all_files = [f"flows/flow_{i}.py" for i in range(500)]
        rows.append(("gitflows check, all 500 files (whole process)", timeit(lambda: check(all_files), 3)))
        print(f"{'operation':<50} {'median':>12}")
        for name, seconds in rows:
            shown = f"{seconds * 1e3:.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} µs"
            print(f"{name:<50} {shown:>12}")


if __name__ == "__main__":
    main()
