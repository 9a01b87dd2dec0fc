"""The child-process runner (what agents and ``get_env_runner`` use) under output it cannot hold:
a flow printing 50 MB costs the runner a bounded tail, and a detached grandchild that keeps the
output pipe open neither hangs the run nor empties its logs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

LOUD = textwrap.dedent('''
    import sys
    from gitflows import Flow, task

    @task
    def shout():
        line = "x" * 1023 + "\\n"
        for _ in range(50 * 1024):  # 50 MiB
            sys.stdout.write(line)
        print("the last line", flush=True)

    with Flow("loud") as flow:
        shout()
''')

DETACHING = textwrap.dedent('''
    import subprocess, sys
    from gitflows import Flow, task

    @task
    def leave_a_daemon(pid_file):
        # a grandchild in its own session that inherits the output pipe and outlives the flow
        daemon = subprocess.Popen(["sleep", "30"], start_new_session=True)
        open(pid_file, "w").write(str(daemon.pid))
        print("flow output before the end", flush=True)

    with Flow("detaching") as flow:
        leave_a_daemon("{pid_file}")
''')

MEASURE = textwrap.dedent('''
    import json, resource, sys
    from gitflows.storage import Local
    from gitflows.storage.runner import ChildProcessRunner

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = ChildProcessRunner(Local(stored_as_script=True, path=sys.argv[1]), flow_name="loud",
                                max_log=64 * 1024).run()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"state": result.state, "logs": len(result.logs), "tail": result.logs[-40:],
                      "grew_kib": after - before, "peak_kib": after}))
''')


def test_a_flow_printing_50_mb_costs_the_runner_a_bounded_tail(tmp_path):
    script = tmp_path / "loud.py"
    script.write_text(LOUD)
    probe = tmp_path / "measure.py"
    probe.write_text(MEASURE)
    done = subprocess.run([sys.executable, str(probe), str(script)], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["state"] == "success"
    assert report["logs"] <= 64 * 1024
    assert "the last line" in report["tail"]
    # 50 MiB went through; the runner's peak memory grew by a few MiB at most (was ~100 MiB)
    assert report["grew_kib"] < 16 * 1024, report


def test_a_detached_grandchild_holding_the_output_neither_hangs_the_run_nor_empties_its_logs(tmp_path):
    from gitflows.storage import Local
    from gitflows.storage.runner import ChildProcessRunner

    pid_file = tmp_path / "daemon.pid"
    script = tmp_path / "detaching.py"
    script.write_text(DETACHING.replace("{pid_file}", str(pid_file)))
    began = time.monotonic()
    result = ChildProcessRunner(Local(stored_as_script=True, path=str(script)), flow_name="detaching").run(
        timeout=60)
    took = time.monotonic() - began
    try:
        assert result.state == "success", (result.error, result.logs)
        assert "flow output before the end" in result.logs
        assert took < 15, f"the run waited {took:.1f}s for a grandchild's pipe"
    finally:
        if pid_file.exists():
            subprocess.run(["kill", "-9", pid_file.read_text()], check=False)
