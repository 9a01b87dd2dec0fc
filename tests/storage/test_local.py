from __future__ import annotations

import os
import socket

import pytest

from gitflows import Flow, Parameter, task
from gitflows.errors import ConfigurationError, FlowNotFoundError, IntegrityError, PathNotFoundError
from gitflows.storage import from_dict
from gitflows.storage.local import Local


@task
def plus_one(x):
    return x + 1


def make_flow(name="local-flow"):
    with Flow(name) as flow:
        plus_one(Parameter("x", default=1))
    return flow


def test_pickle_round_trip_under_directory(tmp_path):
    storage = Local(directory=str(tmp_path / "flows"))
    location = storage.add_flow(make_flow("My Flow / v2"))
    assert location.startswith(str(tmp_path / "flows" / "my-flow-v2") + os.sep)
    assert os.path.isfile(location)
    assert "My Flow / v2" in storage
    assert make_flow("My Flow / v2") in storage and "other" not in storage
    flow = storage.get_flow(location)
    assert flow.name == "My Flow / v2"
    assert flow.run().results["plus_one"] == 2
    # the only flow: no location needed
    assert storage.get_flow().name == "My Flow / v2"


def test_default_directory_and_hostname_label(isolated):
    storage = Local()
    assert storage.directory == str(isolated / ".gitflows" / "flows")
    assert storage.labels == [socket.gethostname()]
    assert Local(add_default_labels=False, labels=["a"]).labels == ["a"]


def test_duplicate_flow_name_is_an_error(tmp_path):
    storage = Local(directory=str(tmp_path))
    storage.add_flow(make_flow("dup"))
    with pytest.raises(ConfigurationError, match='Name conflict: Flow with the name "dup" is already present'):
        storage.add_flow(make_flow("dup"))


def test_missing_pickle_names_the_path(tmp_path):
    storage = Local(directory=str(tmp_path))
    location = storage.add_flow(make_flow())
    os.unlink(location)
    with pytest.raises(PathNotFoundError, match=f"pickled flow {location} does not exist"):
        storage.get_flow(location)


def test_location_outside_directory_is_refused(tmp_path):
    """A location nobody recorded is never loaded; a recorded one (from serialized, possibly tampered
    data) must still lie inside ``directory``."""
    from gitflows.errors import FlowNotFoundError
    from gitflows.storage import from_dict

    storage = Local(directory=str(tmp_path / "flows"))
    outside = tmp_path / "evil.gitflows-pickle"
    outside.write_bytes(b"whatever")
    with pytest.raises(FlowNotFoundError, match="holds no flows"):
        storage.get_flow(str(outside))
    link = tmp_path / "flows" / "link"
    link.symlink_to(outside)
    for location in (str(outside), str(tmp_path / "flows" / ".." / "evil.gitflows-pickle"), str(link)):
        data = storage.serialize()
        data["flows"] = {"evil": location}
        with pytest.raises(ConfigurationError, match="outside the storage directory"):
            from_dict(data).get_flow("evil")
        with pytest.raises(ConfigurationError, match="outside the storage directory"):
            from_dict(data).get_flow(location)


def test_tampered_pickle_is_refused(tmp_path):
    storage = Local(directory=str(tmp_path))
    location = storage.add_flow(make_flow())
    with open(location, "r+b") as fh:
        fh.seek(-3, os.SEEK_END)
        fh.write(b"XYZ")
    with pytest.raises(IntegrityError):
        storage.get_flow(location)


MULTI = """
from gitflows import Flow, task
@task
def which():
    return "{name}"
"""


def test_script_with_several_flows_loads_the_one_asked_for(write):
    path = write("flows/multi.py", """
        from gitflows import Flow, task
        from gitflows.storage.local import Local

        @task
        def which(name):
            return name

        with Flow("a") as a:
            which("a")
        with Flow("b") as b:
            which("b")
    """)
    storage = Local(path=str(path), stored_as_script=True)
    storage.add_flow(Flow("a"))
    storage.add_flow(Flow("b"))
    assert storage.get_flow(str(path), flow_name="b").run().results["which"] == "b"
    with pytest.raises(FlowNotFoundError, match=r"holds 2 flows \('a', 'b'\); say which with flow_name="):
        storage.get_flow(str(path))
    rebuilt = from_dict(storage.serialize())
    assert rebuilt.get_flow(flow_name="a").run().results["which"] == "a"


def test_script_path_required_and_must_exist(tmp_path):
    with pytest.raises(ConfigurationError, match="stored_as_script=True needs path="):
        Local(stored_as_script=True).add_flow(make_flow())
    with pytest.raises(PathNotFoundError, match="nope.py does not exist"):
        Local(stored_as_script=True, path=str(tmp_path / "nope.py")).add_flow(make_flow())
    storage = Local(stored_as_script=True, path=str(tmp_path / "nope.py"), validate=False)
    storage.add_flow(make_flow())
    with pytest.raises(PathNotFoundError, match="nope.py does not exist"):
        storage.get_flow()


def test_module_path_when_stored_as_script(write, monkeypatch, tmp_path):
    write("pkgflows/__init__.py", "")
    write("pkgflows/etl.py", "from gitflows import Flow\nflow = Flow('mod-flow')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    storage = Local(stored_as_script=True, path="pkgflows.etl")
    storage.add_flow(Flow("mod-flow"))
    assert storage.get_flow().name == "mod-flow"
    missing = Local(stored_as_script=True, path="pkgflows.nothere")
    missing.flows["x"] = "pkgflows.nothere"
    with pytest.raises(ModuleNotFoundError, match="module 'pkgflows.nothere' cannot be imported"):
        missing.get_flow()
