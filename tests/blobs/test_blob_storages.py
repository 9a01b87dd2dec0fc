"""S3, GCS, Azure and Webhook against real local servers: pickles and scripts, verified before loading."""

from __future__ import annotations

import json

import pytest

from gitflows import Flow, Parameter, task
from gitflows.errors import (
    AuthenticationError,
    BucketNotFoundError,
    ConfigurationError,
    IntegrityError,
    NotFoundError,
    PathNotFoundError,
    RemoteError,
)
from gitflows.storage import from_dict


@task
def double(x):
    return x * 2


def make_flow(name="blob-flow"):
    with Flow(name) as flow:
        double(Parameter("x", default=21))
    return flow


SCRIPT = '''
from gitflows import Flow, task

@task
def greet(name):
    return "hello " + name

with Flow("first") as first:
    greet("first")

with Flow("second") as second:
    greet("second")
'''


def test_pickle_round_trip(backend):
    storage = backend.make()
    location = storage.add_flow(make_flow("My Flow!"))
    assert location.startswith("my-flow/")
    storage.build()
    data = json.loads(json.dumps(storage.serialize()))
    assert len(data["digests"]["My Flow!"]) == 64
    flow = from_dict(data).get_flow()
    assert flow.name == "My Flow!" and flow.run().results["double"] == 42


def test_script_round_trip_picks_the_named_flow(backend, tmp_path):
    script = tmp_path / "flows.py"
    script.write_text(SCRIPT)
    storage = backend.make(key="scripts/flows.py", stored_as_script=True, local_script_path=str(script))
    storage.add_flow(Flow("first"))
    storage.add_flow(Flow("second"))
    storage.build()
    rebuilt = from_dict(json.loads(json.dumps(storage.serialize())))
    assert rebuilt.get_flow(flow_name="second").run().results["greet"] == "hello second"
    assert rebuilt.get_flow(flow_name="first").run().results["greet"] == "hello first"


def test_tampered_object_is_refused_before_loading(backend, tmp_path):
    storage = backend.make()
    location = storage.add_flow(make_flow())
    storage.build()
    data = storage.serialize()
    marker = tmp_path / "pwned"
    evil = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n".encode()
    backend.raw_put(location, evil)
    with pytest.raises(IntegrityError, match="does not match the recorded"):
        from_dict(data).get_flow()
    assert not marker.exists()


def test_missing_object_and_missing_bucket(backend):
    storage = backend.make()
    storage.flows["ghost"] = "ghost/20260101T000000000000Z"
    with pytest.raises(PathNotFoundError, match="ghost/20260101T000000000000Z"):
        storage.get_flow()
    if backend.kind != "webhook":
        missing = backend.make(bucket="no-such-bucket-here")
        missing.add_flow(make_flow())
        with pytest.raises(BucketNotFoundError, match="no-such-bucket-here"):
            missing.build()


def test_wrong_credentials_never_printed(backend, caplog):
    caplog.set_level("DEBUG")
    backend.break_credentials()
    storage = backend.make()
    storage.add_flow(make_flow())
    with pytest.raises((AuthenticationError, ConfigurationError)) as err:
        storage.build()
    text = str(err.value) + repr(err.value) + caplog.text + json.dumps(storage.serialize()) + repr(storage)
    assert backend.secret not in text


def test_unreachable_endpoint(backend, caplog):
    storage = backend.unreachable()
    storage.add_flow(make_flow())
    with pytest.raises((RemoteError, NotFoundError)) as err:
        storage.build()
    assert backend.secret not in str(err.value) + caplog.text


@pytest.mark.parametrize("cls", ["S3", "GCS", "Azure"])
def test_key_escaping_its_prefix_is_refused(cls):
    from gitflows.storage import storage_class

    key = "flows/../../etc/passwd"
    storage = storage_class(cls)("bucket", **({"blob_name": key} if cls == "Azure" else {"key": key}))
    with pytest.raises(ConfigurationError, match="escape"):
        storage.add_flow(make_flow())
