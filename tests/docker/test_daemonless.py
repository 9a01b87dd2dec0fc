"""Daemonless builds: OCI layers over a base image, pushed with the registry API, pulled back by digest."""

from __future__ import annotations

import json
import sys

import pytest

from gitflows.docker.registry import RegistryClient
from gitflows.errors import AuthenticationError
from gitflows.script import extract_flow_from_file
from gitflows.storage import from_dict
from gitflows.storage.docker import Docker

from .conftest import REGISTRY_PASSWORD, push_tiny_base

SCRIPT = '''
from gitflows import Flow, Parameter, task

@task
def add(x, y):
    return x + y

with Flow("adder") as flow:
    add(Parameter("x", default=2), 40)
'''


def make_flow(tmp_path):
    path = tmp_path / "adder.py"
    path.write_text(SCRIPT)
    return extract_flow_from_file(str(path))


def test_push_then_pull_by_digest(registry, tmp_path, monkeypatch):
    client = RegistryClient(registry.url)
    base = push_tiny_base(client)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    storage = Docker(registry_url=registry.url, base_image=base, image_name="flows/adder", image_tag="v1",
                     files={str(tmp_path / "data.csv"): "/opt/data/data.csv"}, env_vars={"MODE": "prod"})
    storage.add_flow(make_flow(tmp_path))
    storage.build(daemonless=True)
    assert storage.image_digest.startswith("sha256:")
    data = json.loads(json.dumps(storage.serialize()))
    flow = from_dict(data).get_flow()  # not inside the image: fetched from the registry by digest, verified
    assert flow.run().results["add"] == 42
    manifest, digest, _ = client.manifest("flows/adder", storage.image_digest)
    assert digest == storage.image_digest and len(manifest["layers"]) == 2
    config = json.loads(client.blob("flows/adder", manifest["config"]["digest"]))
    assert json.loads(config["config"]["Labels"]["io.gitflows.flows"]) == {"adder": "/opt/gitflows/flows/adder.flow"}
    assert "MODE=prod" in config["config"]["Env"]
    from gitflows.docker.image import read_file

    assert read_file(client, "flows/adder", storage.image_digest, "/opt/data/data.csv") == b"a,b\n1,2\n"


def test_healthcheck_names_the_flow_and_the_missing_module(registry, tmp_path, monkeypatch):
    """The check a daemonless build runs, on a pickle made where a module exists, loaded where it does not."""
    from gitflows.docker.healthcheck import check

    pkg = tmp_path / "site"
    pkg.mkdir()
    (pkg / "only_here_mod.py").write_text("def value():\n    return 1\n")
    monkeypatch.syspath_prepend(str(pkg))
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "needs.py"
    script.write_text("import only_here_mod\nfrom gitflows import Flow, task\n\n@task\ndef use():\n"
                      "    return only_here_mod.value()\n\nwith Flow('needs-module') as flow:\n    use()\n")
    storage = Docker(registry_url=registry.url, base_image="base/tiny:1", image_name="flows/needs", image_tag="v1")
    storage.add_flow(extract_flow_from_file(str(script)))
    contents = storage._contents()  # pickled here, where only_here_mod exists
    assert check(storage._spec(), read=contents.__getitem__) == []
    monkeypatch.delitem(sys.modules, "only_here_mod")
    sys.path.remove(str(pkg))
    problems = check(storage._spec(), read=contents.__getitem__)
    assert problems == ["flow 'needs-module' at /opt/gitflows/flows/needs-module.flow: missing module 'only_here_mod' "
                        "(add it to python_dependencies)"]


def test_registry_credentials_never_printed(auth_registry, tmp_path, monkeypatch, caplog):
    caplog.set_level("DEBUG")
    monkeypatch.setenv("REG_USER", "robot")
    monkeypatch.setenv("REG_PASSWORD", REGISTRY_PASSWORD)
    client = RegistryClient(auth_registry.url, "robot", REGISTRY_PASSWORD)
    base = push_tiny_base(client, "base/private")
    storage = Docker(registry_url=auth_registry.url, base_image=base, image_name="flows/private", image_tag="v1",
                     registry_username_secret="REG_USER", registry_password_secret="REG_PASSWORD")
    storage.add_flow(make_flow(tmp_path))
    storage.build(daemonless=True)
    assert from_dict(storage.serialize()).get_flow().run().results["add"] == 42
    monkeypatch.setenv("REG_PASSWORD", "wrong-" + REGISTRY_PASSWORD)
    bad = Docker(registry_url=auth_registry.url, base_image=base, image_name="flows/private", image_tag="v2",
                 registry_username_secret="REG_USER", registry_password_secret="REG_PASSWORD")
    bad.add_flow(make_flow(tmp_path))
    with pytest.raises(AuthenticationError, match="HTTP 401") as err:
        bad.build(daemonless=True)
    text = str(err.value) + caplog.text + json.dumps(bad.serialize()) + repr(bad)
    assert REGISTRY_PASSWORD not in text


def test_base_image_and_dockerfile_together_is_an_error():
    from gitflows.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="only one of `base_image` and `dockerfile` can be provided"):
        Docker(base_image="python:3.11", dockerfile="Dockerfile")


def test_a_stale_local_file_never_wins_over_the_pushed_digest(registry, tmp_path, monkeypatch, caplog):
    """With a digest recorded, a file at the in-image path on this machine is used only when it holds the
    bytes built into the image (inside a container of it, it does); a stale one is passed over for the
    image, read by digest."""
    import os

    from gitflows.envelope import flow_to_bytes_pickle

    client = RegistryClient(registry.url)
    base = push_tiny_base(client)
    storage = Docker(registry_url=registry.url, base_image=base, image_name="flows/adder", image_tag="stale",
                     gitflows_directory=str(tmp_path / "img"))
    location = storage.add_flow(make_flow(tmp_path))
    storage.build(daemonless=True)
    data = json.loads(json.dumps(storage.serialize()))
    assert set(data["digests"]) == {"adder"}
    built = read_file_from(client, storage.image_digest, location)

    stale_script = tmp_path / "stale" / "adder.py"
    stale_script.parent.mkdir()
    stale_script.write_text(SCRIPT.replace("x + y", "x - y"))
    os.makedirs(os.path.dirname(location), exist_ok=True)
    with open(location, "wb") as fh:
        fh.write(flow_to_bytes_pickle(extract_flow_from_file(str(stale_script))))
    assert from_dict(data).get_flow().run().results["add"] == 42  # the image's flow, by digest
    assert "is not the file built into" in caplog.text

    with open(location, "wb") as fh:  # the very bytes of the image, as inside a container of it
        fh.write(built)
    offline = dict(data, registry_url="127.0.0.1:9")  # no registry reachable: the verified local file is used
    assert from_dict(offline).get_flow().run().results["add"] == 42


def read_file_from(client, digest, path):
    from gitflows.docker.image import read_file

    return read_file(client, "flows/adder", digest, path)
