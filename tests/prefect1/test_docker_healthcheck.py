"""Prefect 1.4.1 tests/storage/test_docker_healthcheck.py, ported to ``gitflows.docker.healthcheck``.

Prefect's ``_healthcheck.py`` ran three checks in the image (``system_check``,
``cloudpickle_deserialization_check``, ``import_flow_from_script_check``); gitflows'
``python -m gitflows.docker.healthcheck SPEC`` runs them as ``system_check`` and ``check(spec)``, which
returns one line per flow that does not load (``main`` prints them and exits 1: the build fails
naming the flow). The real in-image run is covered by tests/docker/test_daemon.py.

Not ported: ``TestResultCheck`` (8 tests): it warns about tasks with retries or caching whose upstream
tasks have no ``result``; gitflows tasks have no result, checkpoint or cache settings to check
(docs/prefect1.md, "Every storage": ``run_basic_healthchecks``).

Deliberate differences (docs/prefect1.md, "Docker"): a flow that does not load is reported as a
line naming the flow and the reason (``missing module 'x' (add it to python_dependencies)``) instead
of the raised ``ImportError``; the pickles are verified gitflows envelopes, not raw cloudpickle.
"""

from __future__ import annotations

import json
import sys
import warnings

import pytest

from gitflows import Flow
from gitflows.docker import healthcheck as healthchecks
from gitflows.script import extract_flow_from_file
from gitflows.utilities.storage import flow_to_bytes_pickle

PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def spec(flows, stored_as_script=False):
    return {"flows": flows, "stored_as_script": stored_as_script, "python": PY}


class TestSerialization:
    def test_cloudpickle_deserialization_check_raises_on_bad_imports(self, tmp_path, monkeypatch, capsys):
        """A pickle made where a module exists, checked where it does not: the flow and module are named."""
        site = tmp_path / "site"
        site.mkdir()
        (site / "foo_machine.py").write_text("def func():\n    return 1\n")
        monkeypatch.syspath_prepend(str(site))
        script = tmp_path / "flows" / "uses.py"
        script.parent.mkdir()
        script.write_text("import foo_machine\nfrom gitflows import Flow, task\n\n@task\ndef use():\n"
                          "    return foo_machine.func()\n\nwith Flow('uses') as flow:\n    use()\n")
        path = tmp_path / "uses.flow"
        path.write_bytes(flow_to_bytes_pickle(extract_flow_from_file(str(script))))
        monkeypatch.delitem(sys.modules, "foo_machine")
        sys.path.remove(str(site))
        problems = healthchecks.check(spec({"uses": str(path)}))
        assert problems == [f"flow 'uses' at {path}: missing module 'foo_machine' (add it to python_dependencies)"]
        assert healthchecks.main(["healthcheck", json.dumps(spec({"uses": str(path)}))]) == 1
        assert f"healthcheck: flow 'uses' at {path}: missing module 'foo_machine'" in capsys.readouterr().err

    def test_cloudpickle_deserialization_check_passes_and_returns_objs(self, tmp_path, capsys):
        path = tmp_path / "empty.flow"
        path.write_bytes(flow_to_bytes_pickle(Flow("empty")))
        assert healthchecks.check(spec({"empty": str(path)})) == []
        assert healthchecks.main(["healthcheck", json.dumps(spec({"empty": str(path)}))]) == 0
        assert "healthcheck: flow 'empty': ok" in capsys.readouterr().out

    def test_cloudpickle_deserialization_check_passes_and_returns_multiple_objs(self, tmp_path):
        for name in ("one", "two"):
            (tmp_path / f"{name}.flow").write_bytes(flow_to_bytes_pickle(Flow(name)))
        assert healthchecks.check(spec({"one": str(tmp_path / "one.flow"), "two": str(tmp_path / "two.flow")})) == []

    def test_a_pickle_of_another_flow_is_reported(self, tmp_path):
        (tmp_path / "one.flow").write_bytes(flow_to_bytes_pickle(Flow("one")))
        problems = healthchecks.check(spec({"two": str(tmp_path / "one.flow")}))
        assert problems == [f"flow 'two' at {tmp_path / 'one.flow'}: GitflowsError: {tmp_path / 'one.flow'} "
                            "holds flow 'one'"]

    def test_a_flow_file_missing_from_the_image_is_reported(self, tmp_path):
        assert healthchecks.check(spec({"gone": str(tmp_path / "gone.flow")})) == [
            f"flow 'gone': {tmp_path / 'gone.flow'} is not in the image"]


class TestScriptImport:
    def test_import_from_script(self, tmp_path):
        full_path = tmp_path / "flow.py"
        full_path.write_text("from gitflows import Flow\nf=Flow('test-flow')\ng=Flow('other-flow')")
        assert healthchecks.check(spec({"test-flow": str(full_path), "other-flow": str(full_path)}, True)) == []

    def test_import_from_script_fails(self, tmp_path):
        full_path = tmp_path / "flow.py"
        full_path.write_text("from my_module import not_exists\nfrom gitflows import Flow\nf=Flow('test-flow')")
        problems = healthchecks.check(spec({"test-flow": str(full_path)}, True))
        assert problems == [f"flow 'test-flow' at {full_path}: missing module 'my_module' "
                            "(add it to python_dependencies)"]


class TestSystemCheck:
    def test_system_check_just_warns(self):
        with pytest.warns(UserWarning, match="unexpected errors"):
            healthchecks.system_check("3.4")

    def test_system_check_doesnt_warn(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            healthchecks.system_check(PY)

    def test_a_python_mismatch_does_not_fail_the_check(self, tmp_path, capsys):
        path = tmp_path / "empty.flow"
        path.write_bytes(flow_to_bytes_pickle(Flow("empty")))
        data = {"flows": {"empty": str(path)}, "stored_as_script": False, "python": "3.4"}
        assert healthchecks.main(["healthcheck", json.dumps(data)]) == 0
        out = capsys.readouterr().out
        assert f"healthcheck: warning: Python version mismatch: this image runs Python {PY}, but the flows were " \
               "built with Python 3.4" in out
        assert "healthcheck: flow 'empty': ok" in out
