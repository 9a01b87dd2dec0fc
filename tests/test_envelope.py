from __future__ import annotations

import hashlib
import json

import pytest

from gitflows import Flow, Parameter, flow_from_bytes_pickle, flow_to_bytes_pickle, task
from gitflows.envelope import MAGIC, read_header
from gitflows.errors import IncompatiblePickleError, IntegrityError
from gitflows.script import extract_flow_from_file


@task
def add(x, y):
    return x + y


def make_flow():
    with Flow("adder") as flow:
        add(Parameter("x", default=1), 2)
    return flow


def rebuild(header, payload, fix_digest=True):
    if fix_digest:
        header = dict(header, size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    return MAGIC + json.dumps(header).encode() + b"\n" + payload


def test_round_trip_runs_and_header_records_versions():
    data = flow_to_bytes_pickle(make_flow())
    header, _ = read_header(data)
    assert header["format"] == 1 and header["flow"] == "adder"
    assert {"python", "cloudpickle", "gitflows", "sha256", "size"} <= set(header)
    assert "hmac" not in header
    flow = flow_from_bytes_pickle(data)
    assert flow.run(parameters={"x": 5}).results["add"] == 7


def test_script_defined_flow_pickles_by_value(write):
    path = write("s.py", """
        from gitflows import Flow, task
        @task
        def f():
            return "from script"
        with Flow("s") as flow:
            f()
    """)
    data = flow_to_bytes_pickle(extract_flow_from_file(str(path)))
    path.unlink()  # the script is gone: the pickle carries the code
    assert flow_from_bytes_pickle(data).run().results["f"] == "from script"


def test_tampered_payload_is_an_integrity_error_before_unpickling():
    data = bytearray(flow_to_bytes_pickle(make_flow()))
    data[-5] ^= 0xFF
    with pytest.raises(IntegrityError, match="sha256 .* does not match"):
        flow_from_bytes_pickle(bytes(data))


def test_truncated_payload_and_not_an_envelope():
    data = flow_to_bytes_pickle(make_flow())
    with pytest.raises(IntegrityError, match="truncated or altered"):
        flow_from_bytes_pickle(data[:-10])
    with pytest.raises(IntegrityError, match="truncated or corrupt"):
        flow_from_bytes_pickle(data[: len(MAGIC) + 5])
    import cloudpickle

    with pytest.raises(IntegrityError, match="not a gitflows pickle envelope"):
        flow_from_bytes_pickle(cloudpickle.dumps(make_flow()))


def test_signed_pickle_requires_the_right_key(monkeypatch):
    monkeypatch.setenv("SIGNING_KEY", "k1-super-secret-value")
    signed = flow_to_bytes_pickle(make_flow(), signing_key_secret="SIGNING_KEY")
    assert "hmac" in read_header(signed)[0]
    assert flow_from_bytes_pickle(signed, signing_key_secret="SIGNING_KEY").name == "adder"
    unsigned = flow_to_bytes_pickle(make_flow())
    with pytest.raises(IntegrityError, match="unsigned pickle refused"):
        flow_from_bytes_pickle(unsigned, signing_key_secret="SIGNING_KEY")
    monkeypatch.setenv("OTHER_KEY", "another-key")
    with pytest.raises(IntegrityError, match="signature does not match") as err:
        flow_from_bytes_pickle(signed, signing_key_secret="OTHER_KEY")
    assert "another-key" not in str(err.value) and "k1-super-secret-value" not in str(err.value)
    # an attacker re-computing the sha256 after changing the payload still fails the signature
    header, payload = read_header(signed)
    forged = rebuild(header, payload.replace(b"adder", b"addex"))
    with pytest.raises(IntegrityError, match="signature does not match"):
        flow_from_bytes_pickle(forged, signing_key_secret="SIGNING_KEY")


def test_key_configured_by_environment(monkeypatch):
    monkeypatch.setenv("MY_KEY", "envkey")
    monkeypatch.setenv("GITFLOWS_SIGNING_KEY_SECRET", "MY_KEY")
    data = flow_to_bytes_pickle(make_flow())
    assert "hmac" in read_header(data)[0]
    assert flow_from_bytes_pickle(data).name == "adder"


def test_version_mismatch_that_breaks_loading_names_both_sides():
    # A pickle that references a module this interpreter does not have, claimed by an older stack.
    payload = b"cgitflowz_missing_module\nThing\n."
    header = {"format": 1, "python": "3.8.10", "cloudpickle": "1.6.0", "gitflows": "0.0.1", "flow": "adder"}
    with pytest.raises(IncompatiblePickleError) as err:
        flow_from_bytes_pickle(rebuild(header, payload))
    text = str(err.value)
    assert "pickled with Python 3.8.10, cloudpickle 1.6.0, gitflows 0.0.1" in text
    assert "loading with Python 3." in text and "version mismatches" in text


def test_unknown_format_is_incompatible():
    header = {"format": 99, "sha256": "x"}
    with pytest.raises(IncompatiblePickleError, match="format 99 is not supported"):
        flow_from_bytes_pickle(MAGIC + json.dumps(header).encode() + b"\nabc")


def test_payload_must_be_a_flow():
    import cloudpickle

    payload = cloudpickle.dumps({"not": "a flow"})
    header = {"format": 1, "python": "x", "cloudpickle": "y", "gitflows": "z", "flow": None}
    with pytest.raises(IncompatiblePickleError, match="payload is a dict, not a gitflows Flow"):
        flow_from_bytes_pickle(rebuild(header, payload))
