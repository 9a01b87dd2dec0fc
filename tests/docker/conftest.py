from __future__ import annotations

import json

import pytest

from gitflows.docker.image import layer
from gitflows.docker.registry import MANIFEST_TYPES, RegistryClient, sha256

from ..servers.docker_servers import Dockerd, Registry, base_rootfs_tar, wheelhouse

REGISTRY_PASSWORD = "regPa55w0rd-S3cret-value"


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    reg = Registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    reg = Registry(tmp_path_factory.mktemp("auth-registry"), username="robot", password=REGISTRY_PASSWORD)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory):
    daemon = Dockerd(tmp_path_factory.mktemp("dockerd"))
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def python_base(dockerd):
    """A Python base image made here from Debian's packages, imported into the test daemon."""
    import docker

    client = docker.APIClient(base_url=dockerd.url)
    client.import_image(src=str(base_rootfs_tar()), repository="gitflows-test/python", tag="3.11")
    return "gitflows-test/python:3.11"


@pytest.fixture(scope="session")
def wheels(tmp_path_factory):
    return wheelhouse(tmp_path_factory.mktemp("wheelhouse") / "wheels")


def push_tiny_base(client: RegistryClient, repo: str = "base/tiny", tag: str = "1") -> str:
    """A minimal base image pushed over the registry API (a daemonless build needs only its layers)."""
    blob, diff_id = layer({"/etc/os-release": b'NAME="tiny"\n'})
    client.put_blob(repo, blob)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "history": []}).encode()
    client.put_blob(repo, config)
    client.put_manifest(repo, tag, {
        "schemaVersion": 2, "mediaType": MANIFEST_TYPES[1],
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                   "digest": sha256(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(blob),
                    "digest": sha256(blob)}]})
    return f"{repo}:{tag}"


@pytest.fixture(scope="session")
def gitflows_base(dockerd, python_base, wheels, registry, tmp_path_factory):
    """The test Python image with gitflows installed (a daemon build), pushed to the registry as
    ``base/gitflows-python:1``: a base for daemonless builds whose flows can run in the image."""
    from gitflows.script import extract_flow_from_file
    from gitflows.storage.docker import Docker

    script = tmp_path_factory.mktemp("gitflows-base") / "noop.py"
    script.write_text("from gitflows import Flow\n\nflow = Flow('noop')\n")
    storage = Docker(registry_url=registry.url, base_image=python_base, image_name="base/gitflows-python",
                     image_tag="1", wheelhouse=str(wheels), base_url=dockerd.url, local_image=True)
    storage.add_flow(extract_flow_from_file(str(script)))
    storage.build(push=True)
    return "base/gitflows-python:1"
