from __future__ import annotations

import pytest

from gitflows.errors import ConfigurationError
from gitflows.imports import local_closure, safe_relpath

REPO = {
    "flows/etl.py": b"import os\nfrom lib import helpers\nfrom . import sibling\nimport common.util\nimport requests\n",
    "flows/sibling.py": b"from .lib.helpers import x\n",
    "flows/lib/__init__.py": b"",
    "flows/lib/helpers.py": b"import deep\nx = 1\n",
    "flows/deep.py": b"y = 2\n",
    "common/__init__.py": b"",
    "common/util.py": b"z = 3\n",
    "flows/unrelated.py": b"",
    "flows/broken.py": b"import (\n",
}


def closure(script, extra=()):
    return local_closure(script, read=lambda p: REPO[p], exists=lambda p: p in REPO, extra=extra)


def test_closure_follows_sibling_package_relative_and_root_imports_transitively():
    got = closure("flows/etl.py")
    assert got[0] == "flows/etl.py"
    assert set(got) == {"flows/etl.py", "flows/lib/helpers.py", "flows/lib/__init__.py", "flows/sibling.py",
                        "flows/deep.py", "common/util.py", "common/__init__.py"}
    assert "flows/unrelated.py" not in got


def test_unparsable_file_is_kept_but_not_followed_and_extra_files_join():
    assert closure("flows/broken.py", extra=["data/x.csv"]) == ["flows/broken.py", "data/x.csv"]


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x.py", "a/../../x.py", "", "a\\b.py", "C:/x.py"])
def test_paths_cannot_escape_the_repo(bad):
    with pytest.raises(ConfigurationError):
        safe_relpath(bad)


def test_safe_relpath_normalises():
    assert safe_relpath("flows/./etl.py") == "flows/etl.py"
    assert safe_relpath("flows/lib/../etl.py") == "flows/etl.py"
