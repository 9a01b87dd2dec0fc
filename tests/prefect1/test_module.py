"""Prefect 1.4.1 tests/storage/test_module.py, ported to gitflows' imports (all tests ported)."""

from __future__ import annotations

import sys
import types

import pytest

from gitflows import Flow
from gitflows.storage import Module


@pytest.fixture
def mymodule(monkeypatch):
    mod_name = "mymodule"
    module = types.ModuleType(mod_name)
    monkeypatch.setitem(sys.modules, mod_name, module)
    return module


class TestModule:
    def test_init(self):
        storage = Module("mymodule")
        assert storage.module == "mymodule"

    def test_add_flow(self):
        flow = Flow("test")
        storage = Module("mymodule")
        assert flow.name not in storage
        storage.add_flow(flow)
        assert flow.name in storage
        with pytest.raises(ValueError, match="Name conflict"):
            storage.add_flow(flow)

    def test_get_flow(self, mymodule):
        flow = Flow("test")
        mymodule.flow = flow
        storage = Module("mymodule")
        storage.add_flow(flow)
        flow2 = storage.get_flow(flow.name)
        assert flow2 is flow

    def test_get_flow_name_mismatch(self, mymodule):
        flow = Flow("test")
        mymodule.flow = Flow("other name")
        storage = Module("mymodule")
        storage.add_flow(flow)
        with pytest.raises(ValueError, match="Failed to find flow"):
            storage.get_flow(flow.name)

    def test_get_flow_not_contained(self, mymodule):
        mymodule.flow = Flow("test")
        storage = Module("mymodule")
        storage.add_flow(Flow("test"))
        with pytest.raises(ValueError, match="Flow is not contained in this Storage"):
            storage.get_flow("other")

    def test_module_attribute_path(self, mymodule):
        mymodule.build = lambda: Flow("built")
        storage = Module("mymodule:build")
        assert storage.get_flow("built").name == "built"
        assert storage.get_flow().name == "built"

    def test_a_name_is_never_imported(self, mymodule):
        """get_flow(name) on a Module that recorded flows never imports the name as a module."""
        mymodule.flow = Flow("test")
        storage = Module("mymodule")
        storage.add_flow(mymodule.flow)
        with pytest.raises(ValueError, match="not contained"):
            storage.get_flow("os")
        assert storage.get_flow("mymodule") is mymodule.flow  # the recorded location (2020 API)
