from __future__ import annotations

import os
import subprocess
import sys

from .conftest import REPO_ROOT


def test_readme_quickstart_runs_end_to_end():
    """The README's first command ends in examples/quickstart.sh; it must work as a newcomer runs it."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    env.pop("GITFLOWS_REGISTRY", None)
    result = subprocess.run(["bash", str(REPO_ROOT / "examples" / "quickstart.sh")], env=env, text=True,
                            capture_output=True, timeout=180)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "checked 2 file(s), 1 flow(s): ok" in out  # the pre-commit hook
    assert "etl: registered: version 1 at" in out and "(pending)" in out  # the pre-push hook
    assert "etl: version 1 confirmed" in out
    assert "loaded 5 rows: [0, 10, 20, 30, 40]" in out  # the agent ran the pinned flow, sibling import and all
    assert "run 1: success" in out
    assert "WARNING" not in out
