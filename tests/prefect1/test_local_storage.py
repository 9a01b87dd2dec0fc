"""Prefect 1.4.1 tests/storage/test_local_storage.py, ported to gitflows' imports.

Deliberate differences (docs/prefect1.md, "Local and Module"):
- the default directory is ``~/.gitflows/flows`` (Prefect: ``~/.prefect/flows``);
- ``result`` is not a ``LocalResult`` by default: gitflows keeps what the user passes and has no
  result layer (``storage.result is None`` unless given).
"""

from __future__ import annotations

import os
import socket
import textwrap

import pytest

from gitflows import Flow
from gitflows.storage import Local


def test_create_local_storage():
    storage = Local(secrets=["AUTH"])
    assert storage
    assert storage.directory.endswith(os.path.join(".gitflows", "flows"))
    assert os.path.isdir(storage.directory)
    assert storage.result is None  # deliberate difference: no LocalResult
    assert storage.secrets == ["AUTH"]


def test_create_local_storage_with_custom_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = Local(directory=".")
    assert storage
    assert os.path.isabs(storage.directory)
    assert storage.directory == str(tmp_path)


def test_create_local_storage_without_validation():
    storage = Local(directory="C:\\Users\\chris\\.prefect\\flows", validate=False)
    assert storage
    assert storage.directory == "C:\\Users\\chris\\.prefect\\flows"
    assert not os.path.exists("C:\\Users\\chris\\.prefect\\flows")


def test_add_flow_to_storage(tmp_path):
    storage = Local(directory=str(tmp_path))
    f = Flow("test")
    assert f.name not in storage

    res = storage.add_flow(f)

    flow_dir = os.path.join(tmp_path, "test")
    assert os.path.exists(flow_dir)
    assert len(os.listdir(flow_dir)) == 1
    assert res.startswith(flow_dir)
    assert f.name in storage

    f2 = storage.get_flow(f.name)
    assert f2.name == "test"


def test_add_flow_with_path_in_pickle_mode_writes_there(tmp_path):
    """Prefect 1: without stored_as_script, ``path`` is where the pickle is written."""
    target = tmp_path / "elsewhere" / "my-flow.pickle"
    storage = Local(directory=str(tmp_path / "flows"), path=str(target))
    f = Flow("test")
    assert storage.add_flow(f) == str(target)
    assert target.is_file()
    assert storage.get_flow("test") == f
    assert storage.get_flow() == f


def test_add_flow_file_to_storage(tmp_path):
    contents = """from gitflows import Flow\nf=Flow('test-flow')"""
    full_path = os.path.join(tmp_path, "flow.py")
    with open(full_path, "w") as f:
        f.write(contents)

    f = Flow("test-flow")
    storage = Local(stored_as_script=True)
    with pytest.raises(ValueError):
        storage.add_flow(f)

    storage = Local(stored_as_script=True, path=full_path)
    loc = storage.add_flow(f)
    assert loc == full_path
    assert f.name in storage


def test_add_flow_raises_if_name_conflict(tmp_path):
    storage = Local(directory=str(tmp_path))
    f = Flow("test")
    storage.add_flow(f)
    g = Flow("test")
    with pytest.raises(ValueError, match='name "test"'):
        storage.add_flow(g)


def test_get_flow_raises_if_flow_not_present():
    s = Local()
    with pytest.raises(ValueError):
        s.get_flow("test")


def test_get_flow_returns_flow(tmp_path):
    storage = Local(directory=str(tmp_path))
    f = Flow("test")
    storage.add_flow(f)
    f2 = storage.get_flow(f.name)
    assert f2 == f


def test_get_flow_from_file_returns_flow(tmp_path):
    contents = textwrap.dedent(
        """
        from gitflows import Flow
        f1 = Flow('flow-1')
        f2 = Flow('flow-2')
        """
    )
    full_path = os.path.join(tmp_path, "flow.py")
    with open(full_path, "w") as f:
        f.write(contents)

    f1 = Flow("flow-1")
    f2 = Flow("flow-2")
    storage = Local(stored_as_script=True, path=full_path)
    storage.add_flow(f1)
    storage.add_flow(f2)

    f1_2 = storage.get_flow(f1.name)
    f2_2 = storage.get_flow(f2.name)
    assert f1_2.name == f1.name
    assert f2_2.name == f2.name
    assert f1_2.run().is_successful()
    assert f2_2.run().is_successful()


def test_get_flow_by_location_2020_api(tmp_path):
    """The 2020 ``prefect.environments.storage`` API: ``get_flow(flow_location)``."""
    storage = Local(directory=str(tmp_path))
    f, g = Flow("test"), Flow("other")
    loc = storage.add_flow(f)
    storage.add_flow(g)
    assert storage.get_flow(loc) == f
    assert storage.get_flow(flow_location=storage.flows["other"]) == g


def test_script_storage_built_elsewhere_picks_the_named_flow(tmp_path):
    """A Local(stored_as_script=True, path=...) configured on the machine that runs it, with no add_flow."""
    path = tmp_path / "flows.py"
    path.write_text("from gitflows import Flow\na = Flow('a')\nb = Flow('b')\n")
    storage = Local(stored_as_script=True, path=str(path))
    assert storage.get_flow("b").name == "b"
    with pytest.raises(ValueError, match="Failed to find flow 'c'"):
        storage.get_flow("c")


def test_containment(tmp_path):
    s = Local(directory=str(tmp_path))
    f = Flow("test")
    s.add_flow(f)

    assert True not in s
    assert "test" in s
    assert Flow("other") not in s
    assert "other" not in s


def test_containment_of_a_flow_object(tmp_path):
    """Deliberate difference: Prefect 1's ``f in storage`` was always False for a Flow object (only
    strings were looked up); gitflows answers by the flow's name."""
    s = Local(directory=str(tmp_path))
    f = Flow("test")
    s.add_flow(f)
    assert f in s


def test_build_returns_self(tmp_path):
    s = Local(directory=str(tmp_path))
    assert s.build() is s

    f = Flow("test")
    s.add_flow(f)
    assert s.build() is s


def test_multiple_flows_in_storage(tmp_path):
    s = Local(directory=str(tmp_path))
    f = Flow("test")
    g = Flow("other")
    f_loc = s.add_flow(f)
    g_loc = s.add_flow(g)

    assert "test" in s
    assert "other" in s
    assert "not" not in s

    assert s.get_flow(f.name) == f
    assert s.get_flow(g.name) == g

    assert s.flows["test"] == f_loc
    assert s.flows["other"] == g_loc


def test_add_flow_with_weird_name_is_cleaned(tmp_path):
    s = Local(directory=str(tmp_path))
    flow = Flow("WELL what do you know?!~? looks like a test!!!!")
    loc = s.add_flow(flow)
    assert "?" not in loc
    assert "!" not in loc
    assert " " not in loc
    assert "~" not in loc


def test_build_healthchecks(tmp_path):
    s = Local(directory=str(tmp_path))
    flow = Flow("TestFlow")
    s.add_flow(flow)
    assert s.build()


def test_build_healthcheck_returns_on_no_flows(tmp_path):
    s = Local(directory=str(tmp_path))
    assert s.build()


def test_labels_includes_hostname(tmp_path):
    s = Local(directory=str(tmp_path))
    assert socket.gethostname() in s.labels


def test_opt_out_of_hostname_label(tmp_path):
    s = Local(directory=str(tmp_path), add_default_labels=False)
    assert socket.gethostname() not in s.labels
