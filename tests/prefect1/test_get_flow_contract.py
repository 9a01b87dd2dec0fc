"""``get_flow`` reads its argument the same way on every storage (issue 11's first requirement).

A recorded name loads that flow; a value of ``storage.flows`` is a location (the 2020 API); on a
storage that recorded flows, any other string is a ``FlowNotFoundError`` (a ``ValueError``) raised
before any network connection, file read or import: a name never becomes a path, key, module or
repository path. Checked on every backend, with every socket connection refused.
"""

from __future__ import annotations

import socket
import sys

import pytest

from gitflows import Flow
from gitflows.errors import FlowNotFoundError
from gitflows.storage import STORAGE_TYPES, from_dict, storage_class

DEAD = "http://127.0.0.1:9"  # the discard port: nothing should ever try it

ARGS = {
    "Local": {"stored_as_script": True, "path": "flows/etl.py", "validate": False},
    "Module": {"module": "gitflows_contract_never_imported"},
    "GitHub": {"repo": "acme/flows", "path": "flows/etl.py", "base_url": DEAD},
    "GitLab": {"repo": "acme/flows", "path": "flows/etl.py", "host": DEAD},
    "Bitbucket": {"project": "ACME", "repo": "flows", "path": "flows/etl.py", "host": DEAD},
    "CodeCommit": {"repo": "flows", "path": "flows/etl.py", "client_options": {"endpoint_url": DEAD,
                                                                                 "region_name": "us-east-1"}},
    "Git": {"flow_path": "flows/etl.py", "repo": "acme/flows", "repo_host": "127.0.0.1:9"},
    "S3": {"bucket": "flows", "client_options": {"endpoint_url": DEAD, "region_name": "us-east-1"}},
    "GCS": {"bucket": "flows"},
    "Azure": {"container": "flows"},
    "Webhook": {"build_request_kwargs": {"url": DEAD + "/put"}, "build_request_http_method": "POST",
                "get_flow_request_kwargs": {"url": DEAD + "/get"}, "get_flow_request_http_method": "GET"},
    "Docker": {"image_name": "flows", "image_tag": "t", "registry_url": "127.0.0.1:9"},
}


def test_every_storage_type_is_covered():
    assert set(ARGS) == set(STORAGE_TYPES)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("type_name", sorted(ARGS))
def test_an_unrecorded_name_is_never_a_location(type_name, no_network, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cls = storage_class(type_name)
    storage = cls(**ARGS[type_name])
    location = storage.add_flow(Flow("etl"))
    assert "etl" in storage and storage.flows["etl"] == location
    for storage in (storage, from_dict(storage.serialize())):
        for name in ("nightly", "flows/other.py", "os", "../../etc/passwd", location + ".other"):
            before = set(sys.modules)
            with pytest.raises(FlowNotFoundError, match="Flow is not contained in this Storage") as info:
                storage.get_flow(name)
            assert isinstance(info.value, ValueError)
            assert repr(name) in str(info.value) and "'etl'" in str(info.value)
            assert set(sys.modules) == before, "get_flow imported something for a name it does not hold"
        with pytest.raises(FlowNotFoundError):
            storage.get_flow(flow_name="nightly")
        with pytest.raises(FlowNotFoundError):
            storage.get_flow(location, flow_name="nightly")  # a recorded location that does not hold that flow


def test_the_guard_sees_a_real_attempt(no_network):
    """Control: a recorded name does go to the server, and the guard notices."""
    storage = storage_class("GitHub")(**ARGS["GitHub"])
    storage.add_flow(Flow("etl"))
    with pytest.raises(Exception) as info:
        storage.get_flow("etl")
    assert not isinstance(info.value, FlowNotFoundError)
    assert "a network connection was attempted" in repr(info.value) + repr(info.value.__context__) \
        + repr(info.value.__cause__)
