from __future__ import annotations

import sys

import pytest

from gitflows import extract_flow_from_file
from gitflows.errors import FlowNotFoundError, PathNotFoundError, ScriptError
from gitflows.inspection import inspect_file
from gitflows.script import extract_flows

TWO_FLOWS = """
from gitflows import Flow, Parameter, task
from gitflows.storage.local import Local

@task
def hello(name):
    return f"hello {name}"

with Flow("first", storage=Local(path="flows/two.py", stored_as_script=True)) as first:
    hello(Parameter("name", default="a"))

second = Flow("second")
with second:
    hello("b")

if __name__ == "__main__":
    raise SystemExit("must not run when loaded")
"""


def test_by_name_only_flow_and_several_flows(write):
    path = write("flows/two.py", TWO_FLOWS)
    assert extract_flow_from_file(str(path), flow_name="second").name == "second"
    with pytest.raises(FlowNotFoundError) as err:
        extract_flow_from_file(str(path))
    assert "Multiple flows found in" in str(err.value)
    with pytest.raises(FlowNotFoundError, match="Failed to find flow 'third' in .*two.py; flows found: 'first', 'second'"):
        extract_flow_from_file(str(path), flow_name="third")
    one = write("one.py", "from gitflows import Flow\nf = Flow('only')\n")
    assert extract_flow_from_file(str(one)).name == "only"


def test_contents_without_a_file_and_no_flows(write):
    flow = extract_flow_from_file(file_contents=TWO_FLOWS, flow_name="first")
    assert flow.run().results["hello"] == "hello a"
    empty = write("empty.py", "x = 1\n")
    with pytest.raises(FlowNotFoundError, match=r"No flows found in .*empty.py"):
        extract_flow_from_file(str(empty))


def test_syntax_error_names_file_and_line(write):
    bad = write("bad.py", "from gitflows import Flow\n\nwith Flow('x') as f\n    pass\n")
    with pytest.raises(ScriptError, match=r"bad.py:3: syntax error"):
        extract_flow_from_file(str(bad))


def test_runtime_error_and_missing_module_name_the_line(write):
    boom = write("boom.py", "import os\n\nraise KeyError('nope')\n")
    with pytest.raises(ScriptError, match=r"boom.py:3: the script raised KeyError: 'nope'"):
        extract_flow_from_file(str(boom))
    missing = write("missing.py", "import definitely_not_installed_xyz\n")
    with pytest.raises(ScriptError, match=r"missing.py:1: cannot import module 'definitely_not_installed_xyz'"):
        extract_flow_from_file(str(missing))


def test_missing_file_is_a_not_found_error(tmp_path):
    with pytest.raises(PathNotFoundError, match="does-not-exist.py does not exist"):
        extract_flow_from_file(str(tmp_path / "does-not-exist.py"))


def test_sibling_imports_work_and_sys_path_and_modules_are_restored(write, tmp_path):
    write("flows/lib/__init__.py", "")
    write("flows/lib/helpers.py", "def shout(s):\n    return s.upper()\n")
    write("flows/siblingmod.py", "SUFFIX = '!'\n")
    path = write("flows/etl.py", """
        import os
        from gitflows import Flow, task
        from lib.helpers import shout
        import siblingmod

        HERE = __file__

        @task
        def greet():
            return shout("hi") + siblingmod.SUFFIX

        with Flow("etl") as flow:
            greet()
    """)
    before_path = list(sys.path)
    before_modules = set(sys.modules)
    flow = extract_flow_from_file(str(path))
    assert sys.path == before_path
    added = set(sys.modules) - before_modules
    assert not {"lib", "lib.helpers", "siblingmod"} & added
    # the flow still runs: its functions keep their module globals
    assert flow.run().results["greet"] == "HI!"
    module_file = flow.get_tasks()[0].fn.__globals__["HERE"]
    assert module_file == str(path)


def test_two_versions_of_a_sibling_load_in_one_process(write, tmp_path):
    for version in ("v1", "v2"):
        write(f"{version}/helper.py", f"VERSION = {version!r}\n")
        write(f"{version}/flow.py", """
            from gitflows import Flow, task
            import helper

            @task
            def which():
                return helper.VERSION

            with Flow("f") as flow:
                which()
        """)
    one = extract_flow_from_file(str(tmp_path / "v1/flow.py"))
    two = extract_flow_from_file(str(tmp_path / "v2/flow.py"))
    assert one.run().results["which"] == "v1"
    assert two.run().results["which"] == "v2"


def test_extract_flows_returns_all_in_order(write):
    path = write("two.py", TWO_FLOWS)
    assert [f.name for f in extract_flows(str(path))] == ["first", "second"]


def test_inspect_file_reads_flows_storage_parameters_and_imports_without_running(write):
    path = write("flows/etl.py", """
        import pandas  # not installed: static inspection does not care
        from .lib import helpers
        from gitflows import Flow, Parameter, task
        from gitflows.storage import GitHub

        STORAGE = GitHub(repo="acme/flows", path="flows/etl.py", access_token_secret="GH")

        @task
        def extract(n):
            return pandas.read_csv(n)

        with Flow("etl", storage=STORAGE) as flow:
            n = Parameter("n", default=3)
            extract(n)

        other = Flow("other")
        other.storage = GitHub(repo="acme/flows", path="flows/other.py", ref="main")
        raise RuntimeError("never executed by inspect_file")
    """)
    info = inspect_file(str(path))
    assert [f.name for f in info.flows] == ["etl", "other"]
    etl, other = info.flows
    assert etl.storage.type == "GitHub"
    assert etl.storage.args == {"repo": "acme/flows", "path": "flows/etl.py", "access_token_secret": "GH"}
    assert etl.parameters == {"n": 3}
    assert etl.tasks == ["extract"]
    assert other.storage.args["ref"] == "main"
    modules = [(r.module, r.level) for r in info.imports]
    assert ("pandas", 0) in modules and ("lib", 1) in modules
    assert set(info.tasks) == {"extract"}


def test_inspect_file_syntax_error_names_line(write):
    bad = write("bad.py", "x = (\n")
    with pytest.raises(ScriptError, match=r"bad.py:1: syntax error"):
        inspect_file(str(bad))
