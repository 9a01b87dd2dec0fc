from __future__ import annotations

import pytest

from gitflows import Flow
from gitflows.errors import ConfigurationError, FlowNotFoundError
from gitflows.storage.module import Module


def test_imports_module_and_returns_named_flow(write, tmp_path, monkeypatch):
    write("teamflows/__init__.py", "")
    write("teamflows/all.py", "from gitflows import Flow\none = Flow('one')\ntwo = Flow('two')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    storage = Module("teamflows.all")
    assert storage.add_flow(Flow("one")) == "teamflows.all"
    assert storage.stored_as_script
    assert storage.get_flow("teamflows.all").name == "one"
    assert storage.get_flow("one").name == "one"
    # as Prefect 1: a flow this storage did not record is not loaded, even if the module defines it
    with pytest.raises(FlowNotFoundError, match="Flow is not contained in this Storage"):
        storage.get_flow(flow_name="two")
    # a storage that recorded nothing picks the named flow out of its module
    assert Module("teamflows.all").get_flow("two").name == "two"
    with pytest.raises(FlowNotFoundError, match="Failed to find flow 'three' in module teamflows.all"):
        Module("teamflows.all").get_flow("three")


def test_bad_module_names():
    with pytest.raises(ConfigurationError, match="module import path"):
        Module("not a module/path.py")
    with pytest.raises(ModuleNotFoundError, match="no module named 'nosuchpkg_zzz'"):
        Module("nosuchpkg_zzz.flows").get_flow(flow_name="x")
