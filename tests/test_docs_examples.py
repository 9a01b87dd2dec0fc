"""The self-contained Python examples of the README and docs/ run as written.

Examples that need a server (GitHub, S3, a registry...) are exercised by the backend suites; this
file runs every ```python block of the pages listed here, each in a fresh namespace and folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
PAGES = {"docs/storage.md": None, "docs/flows.md": None, "README.md": 1}  # page -> how many blocks (None: all)


def examples():
    for page, count in PAGES.items():
        found = BLOCK.findall((REPO_ROOT / page).read_text())
        assert found, f"{page} has no python example"
        for i, body in enumerate(found[:count]):
            yield pytest.param(body, id=f"{page}#{i + 1}")


@pytest.mark.parametrize("source", list(examples()))
def test_example_runs(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # as `python example.py` runs it: blocks guard their runs with `if __name__ == "__main__":`
    exec(compile(source, "<doc example>", "exec"), {"__name__": "__main__"})
