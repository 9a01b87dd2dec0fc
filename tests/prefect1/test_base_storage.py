"""Prefect 1.4.1 tests/storage/test_base_storage.py, ported.

Prefect's config settings are environment variables here: ``flows.defaults.storage.default_class``
is ``GITFLOWS_DEFAULT_STORAGE``, ``flows.defaults.storage.add_default_labels`` is
``GITFLOWS_ADD_DEFAULT_LABELS``. All tests ported.
"""

from __future__ import annotations

import logging

import pytest

from gitflows import Flow
from gitflows.storage import Docker, Local, Storage, get_default_storage_class


@pytest.fixture
def sub():
    class Subclass(Local):
        def __contains__(self, other):
            return False

        def add_flow(self, flow):
            pass

        def build(self, flow):
            pass

        @property
        def default_labels(self):
            return []

    return Subclass


@pytest.fixture
def inst(sub, tmp_path):
    return sub(directory=str(tmp_path), secrets=["secret1", "secret2"], labels=["label1", "label2"],
               add_default_labels=True)


def test_default_storage():
    assert get_default_storage_class() is Local


def test_default_storage_responds_to_config(monkeypatch):
    monkeypatch.setenv("GITFLOWS_DEFAULT_STORAGE", "gitflows.storage.Docker")
    assert get_default_storage_class() is Docker
    monkeypatch.setenv("GITFLOWS_DEFAULT_STORAGE", "gitflows.storage.local:Local")
    assert get_default_storage_class() is Local


def test_default_storage_ignores_bad_config(monkeypatch):
    monkeypatch.setenv("GITFLOWS_DEFAULT_STORAGE", "FOOBAR")
    with pytest.warns(UserWarning, match="FOOBAR"):
        assert get_default_storage_class() is Local


def test_create_base_storage():
    with pytest.raises(TypeError):
        Storage()


class TestStorageLabels:
    def test_doesnt_include_default_labels(self, inst, monkeypatch):
        monkeypatch.setattr(type(inst), "default_labels", property(lambda self: ["default_1", "default_2"]))
        inst.add_default_labels = False
        assert inst.labels == inst._labels

    def test_includes_default_labels(self, inst, monkeypatch):
        monkeypatch.setattr(type(inst), "default_labels", property(lambda self: ["default_1", "default_2"]))
        assert sorted(inst.labels) == sorted(["label1", "label2", "default_1", "default_2"])

    def test_deduplicates_labels(self, inst, monkeypatch):
        monkeypatch.setattr(type(inst), "default_labels", property(lambda self: ["label1"]))
        assert sorted(inst.labels) == ["label1", "label2"]

    def test_no_default_labels(self, inst):
        assert inst.default_labels == []

    @pytest.mark.parametrize("flag", [True, False])
    def test_uses_provided_default_label_flag(self, sub, flag, tmp_path):
        inst = sub(directory=str(tmp_path), add_default_labels=flag)
        assert inst.add_default_labels == flag

    @pytest.mark.parametrize("value, expected", [("true", True), ("1", True), ("false", False), ("0", False)])
    def test_uses_config_value_if_not_provided(self, sub, value, expected, monkeypatch, tmp_path):
        monkeypatch.setenv("GITFLOWS_ADD_DEFAULT_LABELS", value)
        assert sub(directory=str(tmp_path)).add_default_labels is expected

    def test_add_default_labels_default_true(self, inst):
        assert inst.add_default_labels is True


def test_storage_object_model(tmp_path, caplog):
    """The rest of Prefect's Storage surface: name, logger (redacted), secrets, result, stored_as_script."""
    from gitflows.secrets import resolve_secret

    storage = Local(directory=str(tmp_path), secrets=["DB"], result={"dir": "/results"}, stored_as_script=False)
    assert storage.name == "Local"
    assert storage.secrets == ["DB"] and storage.result == {"dir": "/results"}
    assert storage.stored_as_script is False
    assert isinstance(storage.logger, logging.Logger) and storage.logger.name.endswith("Local")
    assert storage.serialize()["result"] == {"dir": "/results"}
    import os
    os.environ["DB"] = "s3cr3t-db-value"
    try:
        resolve_secret("DB")
        with caplog.at_level(logging.INFO):
            storage.logger.info("connecting with s3cr3t-db-value")
        assert "s3cr3t-db-value" not in caplog.text and "connecting with" in caplog.text
    finally:
        del os.environ["DB"]


def test_run_basic_healthchecks_refuses_a_cycle_and_an_unpicklable_flow(tmp_path):
    import threading

    from gitflows import task
    from gitflows.errors import ConfigurationError, FlowRunError

    @task
    def a(x=None):
        return x

    with Flow("cyclic") as flow:
        t1 = a()
        t2 = a(t1)
    flow.add_edge(t2, t1)
    storage = Local(directory=str(tmp_path))
    storage._flows["cyclic"] = flow  # as add_flow would, without writing the pickle
    with pytest.raises(FlowRunError, match="cycle"):
        storage.run_basic_healthchecks()
    with pytest.raises(ValueError):
        storage.build()

    lock = threading.Lock()

    @task
    def uses_lock():
        return lock

    with Flow("locked") as locked:
        uses_lock()
    storage = Local(directory=str(tmp_path))
    storage._flows["locked"] = locked
    with pytest.raises(ConfigurationError, match="'locked' cannot be pickled"):
        storage.run_basic_healthchecks()
