"""Prefect 1.4.1 tests/utilities/test_storage.py, ported to ``gitflows.utilities.storage``.

``test_get_flow_image_run_config`` uses an object with an ``image`` attribute where Prefect used
``DockerRun``: gitflows has no run-config classes and keeps whatever ``Flow(run_config=...)`` is given.

Deliberate differences (docs/prefect1.md, "extract_flow_from_file ..."):
- several flows in a file and no ``flow_name``: an error listing them (Prefect took the first);
- ``flow_from_bytes_pickle`` loads only verified gitflows envelopes: raw cloudpickle and Prefect's
  JSON wrapper are refused before unpickling (unpickling is code execution);
- a version mismatch on a pickle that loads is not warned about: the envelope records versions and
  a pickle that fails to load names both sides.
"""

from __future__ import annotations

import os
import sys
import textwrap
import types

import cloudpickle
import pytest

from gitflows import Flow, Task
from gitflows.errors import FlowStorageError, IntegrityError
from gitflows.storage import Docker, Local
from gitflows.utilities.storage import (
    extract_flow_from_file,
    extract_flow_from_module,
    flow_from_bytes_pickle,
    flow_to_bytes_pickle,
    get_flow_image,
)


def test_get_flow_image_docker_storage():
    flow = Flow("test", storage=Docker(registry_url="test", image_name="name", image_tag="tag"))
    assert get_flow_image(flow=flow) == "test/name:tag"


def test_get_flow_image_run_config(tmp_path):
    from types import SimpleNamespace

    flow = Flow("test", run_config=SimpleNamespace(image="repo/name:tag"), storage=Local(directory=str(tmp_path)))
    assert get_flow_image(flow=flow) == "repo/name:tag"


def test_get_flow_image_raises_on_missing_info(tmp_path):
    flow = Flow("test", run_config=SimpleNamespaceNoImage(), storage=Local(directory=str(tmp_path)))
    with pytest.raises(ValueError, match="not of type Docker"):
        get_flow_image(flow=flow)


class SimpleNamespaceNoImage:
    """Prefect's UniversalRun: a run config without an image."""


class TestExtractFlowFromFile:
    @pytest.fixture
    def flow_path(self, tmp_path):
        contents = """from gitflows import Flow\nf=Flow('flow-1')\nf2=Flow('flow-2')"""
        full_path = os.path.join(tmp_path, "flow.py")
        with open(full_path, "w") as f:
            f.write(contents)
        return full_path

    @pytest.fixture
    def one_flow_path(self, tmp_path):
        full_path = os.path.join(tmp_path, "one.py")
        with open(full_path, "w") as f:
            f.write("from gitflows import Flow\nf=Flow('flow-1')\n")
        return full_path

    @pytest.fixture
    def emoji_flow_path(self, tmp_path):
        contents = """from gitflows import Flow\nf=Flow('emoji-flow-❌')"""
        full_path = os.path.join(tmp_path, "flow.py")
        with open(full_path, "w", encoding="utf-8") as f:
            f.write(contents)
        return full_path

    @pytest.fixture
    def flow_path_with_additional_file(self, tmp_path):
        contents = """\
        from gitflows import Flow
        from pathlib import Path

        with open(str(Path(__file__).resolve().parent)+"/test.txt", "r") as f:
            name = f.read()

        f2 = Flow(name)
        """
        full_path = os.path.join(tmp_path, "flow.py")
        with open(full_path, "w") as f:
            f.write(textwrap.dedent(contents))
        with open(os.path.join(tmp_path, "test.txt"), "w") as f:
            f.write("test-flow")
        return full_path

    def test_extract_flow_from_file_path(self, flow_path, one_flow_path):
        flow = extract_flow_from_file(file_path=one_flow_path)
        assert flow.name == "flow-1"
        assert flow.run().is_successful()

        flow = extract_flow_from_file(file_path=flow_path, flow_name="flow-1")
        assert flow.name == "flow-1"

        flow = extract_flow_from_file(file_path=flow_path, flow_name="flow-2")
        assert flow.name == "flow-2"

    def test_several_flows_and_no_name_is_an_error(self, flow_path):
        """Deliberate difference: Prefect 1 silently returned the first flow."""
        with pytest.raises(ValueError, match=r"Multiple flows found in .*flow.py \('flow-1', 'flow-2'\)"):
            extract_flow_from_file(file_path=flow_path)

    def test_extract_emoji_flow_from_file_path(self, emoji_flow_path):
        flow = extract_flow_from_file(file_path=emoji_flow_path)
        assert flow.name == "emoji-flow-❌"
        assert flow.run().is_successful()

    def test_extract_flow_from_file_path_can_load_files_from_same_directory(self, flow_path_with_additional_file):
        flow = extract_flow_from_file(file_path=flow_path_with_additional_file)
        assert flow.name == "test-flow"
        assert flow.run().is_successful()

    def test_extract_flow_from_file_contents(self, flow_path):
        with open(flow_path) as f:
            contents = f.read()
        flow = extract_flow_from_file(file_contents=contents, flow_name="flow-1")
        assert flow.name == "flow-1"
        assert flow.run().is_successful()
        flow = extract_flow_from_file(file_contents=contents, flow_name="flow-2")
        assert flow.name == "flow-2"
        flow = extract_flow_from_file(file_contents=contents.encode(), flow_name="flow-2")
        assert flow.name == "flow-2"  # bytes work too
        with pytest.raises(ValueError, match="Multiple flows found"):
            extract_flow_from_file(file_contents=contents)

    def test_extract_flow_from_file_errors(self, flow_path):
        with pytest.raises(ValueError, match="but not both"):
            extract_flow_from_file(file_path="", file_contents="")

        with pytest.raises(ValueError, match="Provide either"):
            extract_flow_from_file()

        with pytest.raises(ValueError, match=r"Failed to find flow 'not-real' in .*flow.py; flows found: "
                                             r"'flow-1', 'flow-2'"):
            extract_flow_from_file(file_path=flow_path, flow_name="not-real")

        with pytest.raises(ValueError, match="No flows found in"):
            extract_flow_from_file(file_contents="")

        with pytest.raises(TypeError, match="must be string or bytes"):
            extract_flow_from_file(file_contents=123)

    def test_extract_flow_from_file_raises_on_run_register(self, tmp_path):
        """Prefect 1 warned (and did not run) when a flow file called flow.run() while being loaded."""
        full_path = os.path.join(tmp_path, "flow.py")
        with open(full_path, "w") as f:
            f.write("from gitflows import Flow, task\n"
                    "@task\ndef boom():\n    raise SystemExit('ran while loading')\n"
                    "with Flow('test-flow') as f:\n    boom()\n"
                    "f.run()\n")
        with pytest.warns(UserWarning, match="flow.run\\(\\) was called while its script was being loaded"):
            flow = extract_flow_from_file(file_path=full_path)
        assert flow.name == "test-flow"


@pytest.fixture
def mymodule(monkeypatch):
    mod_name = "mymodule"
    module = types.ModuleType(mod_name)
    monkeypatch.setitem(sys.modules, mod_name, module)
    return module


def test_extract_flow_from_module(mymodule):
    class Obj:
        flow = Flow("multi-level flow")

    mymodule.flow = Flow("top level flow")
    mymodule.multi_level = Obj()
    mymodule.bad_type = 1

    assert extract_flow_from_module("mymodule") is mymodule.flow
    assert extract_flow_from_module("mymodule", "top level flow") is mymodule.flow
    assert extract_flow_from_module("mymodule:flow", "top level flow") is mymodule.flow
    assert extract_flow_from_module("mymodule:multi_level.flow") is Obj.flow

    mymodule.flow2 = Flow("a second flow")
    assert extract_flow_from_module("mymodule", "top level flow") is mymodule.flow
    assert extract_flow_from_module("mymodule", "a second flow") is mymodule.flow2

    with pytest.raises(ValueError, match="Multiple flows found"):
        extract_flow_from_module("mymodule")

    with pytest.raises(ValueError, match="Failed to find flow"):
        extract_flow_from_module("mymodule", "unknown name")

    with pytest.raises(ValueError, match="Flow at 'mymodule:flow' is named"):
        extract_flow_from_module("mymodule:flow", "incorrect name")

    with pytest.raises(TypeError, match="Object at 'mymodule:bad_type'"):
        extract_flow_from_module("mymodule:bad_type")

    with pytest.raises(ValueError, match="Failed to find flow at 'mymodule:nope'"):
        extract_flow_from_module("mymodule:nope")

    with pytest.raises(ModuleNotFoundError, match="no module named 'nosuchmodule_zz'"):
        extract_flow_from_module("nosuchmodule_zz.flows")


def test_extract_flow_from_module_callable_objects(mymodule):
    flow1 = Flow("flow 1")
    flow2 = Flow("flow 2")

    class Obj:
        def build_flow(self):
            return flow2

    mymodule.build_flow = lambda: flow1
    mymodule.multi_level = Obj()
    mymodule.bad_type = lambda: 1

    assert extract_flow_from_module("mymodule:build_flow") is flow1
    assert extract_flow_from_module("mymodule:build_flow", "flow 1") is flow1
    assert extract_flow_from_module("mymodule:multi_level.build_flow") is flow2

    with pytest.raises(TypeError, match="Object at 'mymodule:bad_type'"):
        extract_flow_from_module("mymodule:bad_type")


class RaiseOnLoad(Task):
    def __init__(self, exc):
        super().__init__(name="raise-on-load")
        self.exc = exc

    @staticmethod
    def _raise(exc):
        raise exc

    def __reduce__(self):
        return (self._raise, (self.exc,))


class TestFlowToFromBytesPickle:
    def test_serialize_deserialize(self):
        s = flow_to_bytes_pickle(Flow("test"))
        assert isinstance(s, bytes)
        flow = flow_from_bytes_pickle(s)
        assert isinstance(flow, Flow)
        assert flow.name == "test"

    def test_flow_from_bytes_loads_raw_pickle(self, tmp_path):
        """Deliberate difference (a raw pickle is refused): Prefect loaded raw cloudpickle bytes (and its
        own unsigned JSON wrapper). gitflows refuses anything that is not a verified envelope, before
        unpickling: a raw pickle that would run code never runs."""
        marker = tmp_path / "ran"

        class Evil:
            def __reduce__(self):
                return (open, (str(marker), "w"))

        for payload in (cloudpickle.dumps(Flow("test")), cloudpickle.dumps(Evil()),
                        b'{"flow": "gASV", "versions": {}}'):
            with pytest.raises(FlowStorageError, match="not a gitflows pickle envelope"):
                flow_from_bytes_pickle(payload)
        assert not marker.exists()
        assert issubclass(IntegrityError, FlowStorageError)

    def test_flow_from_bytes_warns_prefect_version_mismatch(self, monkeypatch):
        """Deliberate difference: a pickle that loads is not warned about when versions differ (the envelope
        records them; a pickle that fails to load names both sides, tested below). It loads and runs."""
        s = flow_to_bytes_pickle(Flow("test"))
        monkeypatch.setattr("gitflows.envelope.__version__", "0.1.0", raising=False)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            flow = flow_from_bytes_pickle(s)
        assert isinstance(flow, Flow) and flow.name == "test"

    @pytest.mark.parametrize("version_mismatch", [False, True])
    @pytest.mark.parametrize("import_error", [False, True])
    def test_flow_from_bytes_error(self, monkeypatch, version_mismatch, import_error):
        exc = ImportError("mymodule") if import_error else ValueError("Oh no!")
        flow = Flow("test", tasks=[RaiseOnLoad(exc)])
        s = flow_to_bytes_pickle(flow)

        if version_mismatch:
            monkeypatch.setattr(cloudpickle, "__version__", "0.0.2")

        with pytest.raises(FlowStorageError, match="An error occurred while unpickling") as info:
            flow_from_bytes_pickle(s)

        msg = "mymodule" if import_error else "Oh no!"
        assert msg in str(info.value)
        assert ("missing Python module" in str(info.value)) == import_error
        assert ("version mismatches" in str(info.value)) == version_mismatch
