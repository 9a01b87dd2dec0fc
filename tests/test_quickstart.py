from __future__ import annotations

import os
import subprocess
import sys

from .conftest import REPO_ROOT


def test_readme_quickstart_runs_end_to_end():
    """The README's first command ends in examples/quickstart.sh; it must work as a newcomer runs it."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    result = subprocess.run(["bash", str(REPO_ROOT / "examples" / "quickstart.sh")], env=env, text=True,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checked 1 file(s), 1 flow(s): ok" in result.stderr
    assert "loaded 5 rows: [0, 10, 20, 30, 40]" in result.stdout
    assert "flow 'etl': Success" in result.stdout
