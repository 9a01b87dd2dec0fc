"""Builds with a real Docker daemon (started by the tests), pushed to a real registry, run in a container."""

from __future__ import annotations

import json
import sys

import pytest

from gitflows.errors import GitflowsError
from gitflows.script import extract_flow_from_file
from gitflows.storage.docker import Docker

from .test_daemonless import SCRIPT


def run_in_container(dockerd, image, storage_json):
    import docker

    client = docker.APIClient(base_url=dockerd.url)
    code = ("import json, sys; from gitflows.storage import from_dict; "
            "flow = from_dict(json.loads(sys.argv[1])).get_flow(); print('result', flow.run().results['add'])")
    container = client.create_container(image, command=["/opt/gitflows-venv/bin/python", "-c", code, storage_json],
                                        host_config=client.create_host_config(network_mode="none"))
    client.start(container)
    status = client.wait(container, timeout=120)
    logs = client.logs(container).decode()
    client.remove_container(container)
    return status["StatusCode"], logs


def test_build_push_and_run_inside_the_container(dockerd, python_base, wheels, registry, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", dockerd.url)
    script = tmp_path / "adder.py"
    script.write_text(SCRIPT)
    storage = Docker(registry_url=registry.url, base_image=python_base, image_name="flows/daemon-adder",
                     image_tag="v1", wheelhouse=str(wheels), base_url=dockerd.url, local_image=True,
                     env_vars={"GREETING": "hello 'quoted' \"world\""},
                     extra_dockerfile_commands=['LABEL org.example.team="data"'])
    storage.add_flow(extract_flow_from_file(str(script)))
    storage.build(push=True)
    assert storage.image_digest and storage.image_digest.startswith("sha256:")
    image = f"{registry.host}/flows/daemon-adder@{storage.image_digest}"
    import docker

    docker.APIClient(base_url=dockerd.url).pull(f"{registry.host}/flows/daemon-adder", tag="v1")
    code, logs = run_in_container(dockerd, image, json.dumps(storage.serialize()))
    assert code == 0, logs
    assert "result 42" in logs


def test_healthcheck_failure_names_the_flow_and_module(dockerd, python_base, wheels, tmp_path, monkeypatch):
    pkg = tmp_path / "site"
    pkg.mkdir()
    (pkg / "host_only_module.py").write_text("def value():\n    return 1\n")
    monkeypatch.syspath_prepend(str(pkg))
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "needs.py"
    script.write_text("import host_only_module\nfrom gitflows import Flow, task\n\n@task\ndef use():\n"
                      "    return host_only_module.value()\n\nwith Flow('needs-module') as flow:\n    use()\n")
    storage = Docker(base_image=python_base, image_name="flows/needs", image_tag="v1", wheelhouse=str(wheels),
                     base_url=dockerd.url, local_image=True)
    storage.add_flow(extract_flow_from_file(str(script)))
    with pytest.raises(GitflowsError) as err:
        storage.build(push=False)
    text = str(err.value)
    assert isinstance(err.value, ValueError)  # ImageBuildError, as Prefect 1's ValueError
    assert "your docker image flows/needs:v1 failed to build" in text
    assert "healthcheck: flow 'needs-module' at /opt/gitflows/flows/needs-module.flow: missing module " \
           "'host_only_module'" in text
    assert "returned a non-zero code" in text  # Docker's own line
    sys.modules.pop("host_only_module", None)


@pytest.mark.slow
def test_daemonless_build_checked_in_the_image_then_run_there(dockerd, gitflows_base, registry, tmp_path, monkeypatch):
    """Issue 15: build(daemonless=True, check_in_image=True) runs the healthcheck inside the pushed image (not with
    this interpreter); the flow then runs in that image through its env runner."""
    monkeypatch.setenv("DOCKER_HOST", dockerd.url)
    script = tmp_path / "adder.py"
    script.write_text(SCRIPT)
    storage = Docker(registry_url=registry.url, base_image=gitflows_base, image_name="flows/checked", image_tag="v1",
                     base_url=dockerd.url)
    storage.add_flow(extract_flow_from_file(str(script)))
    storage.build(daemonless=True, check_in_image=True)
    assert storage.image_digest and storage.image_digest.startswith("sha256:")
    result = storage.get_env_runner("adder").run({}, timeout=300)
    assert result.state == "success", (result.error, result.logs)
    assert result.tasks == {"x": "Success", "add": "Success"}  # the parameter is a task, as in Prefect 1


@pytest.mark.slow
def test_daemonless_check_in_the_image_finds_a_module_only_this_machine_has(dockerd, gitflows_base, registry, tmp_path,
                                                                            monkeypatch):
    """The module exists here, so this interpreter's check passes; the image lacks it, so the build fails naming
    the flow and the module, and no digest is recorded (nothing can register the broken image)."""
    pkg = tmp_path / "site"
    pkg.mkdir()
    (pkg / "only_on_this_machine.py").write_text("def value():\n    return 1\n")
    monkeypatch.syspath_prepend(str(pkg))
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "needs.py"
    script.write_text("import only_on_this_machine\nfrom gitflows import Flow, task\n\n@task\ndef use():\n"
                      "    return only_on_this_machine.value()\n\nwith Flow('needs-module') as flow:\n    use()\n")
    storage = Docker(registry_url=registry.url, base_image=gitflows_base, image_name="flows/needs-checked",
                     image_tag="v1", base_url=dockerd.url)
    storage.add_flow(extract_flow_from_file(str(script)))
    storage.build(daemonless=True)  # checked here only: passes, and the digest is recorded
    assert storage.image_digest
    storage.image_digest = None
    with pytest.raises(GitflowsError) as err:
        storage.build(daemonless=True, check_in_image=True)
    text = str(err.value)
    assert isinstance(err.value, ValueError)  # ImageBuildError, as Prefect 1's ValueError
    assert "your docker image" in text and "healthcheck in the image failed" in text
    assert "flow 'needs-module' at /opt/gitflows/flows/needs-module.flow: missing module 'only_on_this_machine'" in text
    assert storage.image_digest is None
    sys.modules.pop("only_on_this_machine", None)


def test_check_in_image_of_a_base_without_python_says_so(dockerd, registry, tmp_path):
    from gitflows.docker.registry import RegistryClient

    from .conftest import push_tiny_base

    base = push_tiny_base(RegistryClient(registry.url), repo="base/tiny-nopython")
    script = tmp_path / "adder.py"
    script.write_text(SCRIPT)
    storage = Docker(registry_url=registry.url, base_image=base, image_name="flows/nopython", image_tag="v1",
                     base_url=dockerd.url)
    storage.add_flow(extract_flow_from_file(str(script)))
    with pytest.raises(GitflowsError, match="cannot start python in .*base_image needs Python and gitflows"):
        storage.build(daemonless=True, check_in_image=True)
    assert storage.image_digest is None


def test_check_in_image_without_a_daemon_or_with_a_daemon_build_is_refused(registry, tmp_path):
    from gitflows.docker.registry import RegistryClient
    from gitflows.errors import ConfigurationError

    from .conftest import push_tiny_base

    base = push_tiny_base(RegistryClient(registry.url), repo="base/tiny-nodaemon")
    script = tmp_path / "adder.py"
    script.write_text(SCRIPT)
    storage = Docker(registry_url=registry.url, base_image=base, image_name="flows/nodaemon", image_tag="v1",
                     base_url="tcp://127.0.0.1:9")
    storage.add_flow(extract_flow_from_file(str(script)))
    with pytest.raises(ConfigurationError, match="check_in_image needs a Docker daemon that can pull .* no Docker "
                                                 "daemon answers at tcp://127.0.0.1:9"):
        storage.build(daemonless=True, check_in_image=True)
    with pytest.raises(ConfigurationError, match="check_in_image is for daemonless builds"):
        storage.build(check_in_image=True)
