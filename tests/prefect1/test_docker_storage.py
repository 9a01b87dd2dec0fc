"""Prefect 1.4.1 tests/storage/test_docker_storage.py, ported to ``gitflows.storage.Docker``.

Prefect's tests assert on the generated Dockerfile and on mocked docker client calls. Here the
Dockerfile is read from ``create_dockerfile_object`` and every build, pull and push goes to the real
dockerd and docker-registry the suite starts on 127.0.0.1 (tests/docker/conftest.py); the slow ones
share two images (``built`` and ``script_image``).

Not ported:
- ``test_empty_docker_storage_on_tagged_commit``, ``test_base_image_release_candidate_dev_image``,
  ``test_base_image_release_candidate``: they pick a ``prefecthq/prefect`` image tag from Prefect's
  version; gitflows has no image of its own and always defaults to ``python:X.Y-slim`` (tested in
  ``test_empty_docker_storage``).
- ``test_docker_init_responds_to_python_version`` and ``test_docker_init_responds_to_prefect_version``
  beyond the running interpreter and gitflows version: they patch ``sys.version_info`` and
  ``prefect.__version__``; the real values are asserted instead.
- ``test_build_image_passes``: skipped in Prefect itself; the real build is ``built`` below.
- ``test_build_no_default``: it builds from the default base image ``python:X.Y-slim``, which would be
  pulled from Docker Hub; these tests never leave 127.0.0.1 (the default is asserted in
  ``test_empty_docker_storage``, the naming in ``test_build_base_image``).
- ``test_docker_storage_output_stream[empty strings]``: it feeds raw byte lines to Prefect's private
  parser; docker-py's ``decode=True`` stream that gitflows reads yields dicts.

Deliberate differences (docs/prefect1.md, "Docker"): flows are at ``<gitflows_directory>/flows/<slug>.flow``
(default ``/opt/gitflows``); no ``PREFECT__USER_CONFIG_PATH`` in ``env_vars`` and no ``wheel`` added to
``python_dependencies``; Dockerfile ``COPY``/``RUN`` lines in the JSON (exec) form, ``ENV`` values
double-quoted and literal; a user ``dockerfile`` builds with its own folder as context (generated files
under ``.gitflows-build/``); ``stored_as_script=True`` without ``path`` fails at construction; the
healthcheck is ``python -m gitflows.docker.healthcheck`` (no ``healthcheck.py`` copied in); docker output
goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import pytest

import gitflows
from gitflows import Flow
from gitflows.docker.daemon import build_output
from gitflows.docker.registry import RegistryClient
from gitflows.errors import ImageBuildError, ImageTransferError
from gitflows.script import extract_flow_from_file
from gitflows.storage import from_dict
from gitflows.storage.docker import Docker
from gitflows.utilities.storage import flow_to_bytes_pickle
from tests.docker.conftest import dockerd, push_tiny_base, python_base, registry, wheels  # noqa: F401

PY = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def no_docker_host_var(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)


def dockerfile_of(storage, directory) -> str:
    path = storage.create_dockerfile_object(directory=str(directory))
    with open(path) as fh:
        return fh.read()


def test_create_docker_storage():
    storage = Docker(secrets=["cloud_creds"])
    assert storage
    assert storage.logger
    assert storage.secrets == ["cloud_creds"]


def test_cant_create_docker_with_both_base_image_and_dockerfile():
    with pytest.raises(ValueError, match="only one of `base_image` and `dockerfile`"):
        Docker(dockerfile="path/to/file", base_image="python:3.7")


def test_serialize_docker_storage():
    assert Docker().serialize()["type"] == "Docker"


def test_add_flow_to_docker():
    """Deliberate difference: ``/opt/gitflows/flows/<slug>.flow`` (Prefect: ``/opt/prefect/flows/<slug>.prefect``)."""
    storage = Docker()
    f = Flow("test")
    assert f not in storage
    assert storage.add_flow(f) == "/opt/gitflows/flows/test.flow"
    assert f.name in storage
    assert storage.flows[f.name] == "/opt/gitflows/flows/test.flow"


def test_add_flow_to_docker_custom_prefect_dir():
    """Deliberate difference: no ``PREFECT__USER_CONFIG_PATH`` is added to ``env_vars``."""
    storage = Docker(prefect_directory="/usr/prefect-is-gr8")
    f = Flow("test")
    assert storage.add_flow(f) == "/usr/prefect-is-gr8/flows/test.flow"
    assert storage.flows[f.name] == "/usr/prefect-is-gr8/flows/test.flow"
    assert storage.prefect_directory == storage.gitflows_directory == "/usr/prefect-is-gr8"
    assert storage.env_vars == {}


@pytest.mark.parametrize("platform,url", [("win32", "npipe:////./pipe/docker_engine"),
                                          ("darwn", "unix://var/run/docker.sock")])
def test_empty_docker_storage(monkeypatch, platform, url, no_docker_host_var):
    """Deliberate differences: ``python_dependencies`` stays empty (Prefect added ``wheel``) and
    ``env_vars`` stays empty (Prefect added ``PREFECT__USER_CONFIG_PATH``)."""
    monkeypatch.setattr(sys, "platform", platform)
    storage = Docker()
    monkeypatch.undo()
    assert not storage.registry_url
    assert storage.base_image == f"python:{PY}-slim"
    assert not storage.image_name
    assert not storage.image_tag
    assert storage.python_dependencies == []
    assert storage.env_vars == {}
    assert not storage.files
    assert storage.prefect_version == storage.gitflows_version == gitflows.__version__
    assert storage.base_url == url
    assert storage.tls_config is False
    assert storage.build_kwargs == {}
    assert not storage.local_image
    assert not storage.ignore_healthchecks


def test_initialized_docker_storage(no_docker_host_var):
    deps = ["test"]
    storage = Docker(registry_url="test1", base_image="test3", python_dependencies=deps, image_name="test4",
                     image_tag="test5", env_vars={"test": "1"}, base_url="test_url", tls_config={"tls": "here"},
                     prefect_version="1.2.3", local_image=True, build_kwargs={"nocache": True})
    assert storage.registry_url == "test1"
    assert storage.base_image == "test3"
    assert storage.image_name == "test4"
    assert storage.image_tag == "test5"
    assert storage.python_dependencies == ["test"] and deps == ["test"]  # the caller's list is not changed
    assert storage.env_vars == {"test": "1"}
    assert storage.base_url == "test_url"
    assert storage.tls_config == {"tls": "here"}
    assert storage.build_kwargs == {"nocache": True}
    assert storage.prefect_version == storage.gitflows_version == "1.2.3"
    assert storage.local_image


def test_prefect_names_are_aliases_and_must_agree():
    storage = Docker(prefect_version="1.2.3", prefect_directory="/srv/flows")
    assert (storage.gitflows_version, storage.gitflows_directory) == ("1.2.3", "/srv/flows")
    assert Docker(gitflows_version="1.2.3", prefect_version="1.2.3").gitflows_version == "1.2.3"
    with pytest.raises(ValueError, match="gitflows_directory='/a' and prefect_directory='/b' name the same setting"):
        Docker(gitflows_directory="/a", prefect_directory="/b")
    restored = from_dict(json.loads(json.dumps(storage.serialize())))
    assert (restored.prefect_version, restored.prefect_directory) == ("1.2.3", "/srv/flows")


@pytest.mark.slow
def test_initialized_docker_storage_client(dockerd, monkeypatch, no_docker_host_var):  # noqa: F811
    """Prefect asserted the mocked ``APIClient`` call; here the client talks to the real daemon."""
    storage = Docker(registry_url="test1", base_url=dockerd.url)
    client = storage._get_client()
    assert client.ping()
    assert client.api_version == client.version()["ApiVersion"]  # version="auto": negotiated
    assert storage.create_docker_client().ping()


def test_env_var_precedence_docker_storage(monkeypatch, no_docker_host_var):
    monkeypatch.setenv("DOCKER_HOST", "bar")
    assert Docker().base_url == "bar"
    assert Docker(base_url="foo").base_url == "foo"


def test_docker_storage_allows_for_user_provided_config_locations():
    assert Docker(env_vars={"PREFECT__USER_CONFIG_PATH": "1"}).env_vars == {"PREFECT__USER_CONFIG_PATH": "1"}


def test_files_not_absolute_path():
    with pytest.raises(ValueError, match="Provided paths test are not absolute file paths"):
        Docker(files={"test": "test"})


def test_files_may_have_relative_destinations(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "ctx").mkdir()
    storage = Docker(files={str(tmp_path / "a.txt"): "conf/a.txt"})
    assert 'COPY ["a.txt", "conf/a.txt"]' in dockerfile_of(storage, tmp_path / "ctx")


@pytest.mark.parametrize("key", ["fileobj", "custom_context", "dockerfile"])
def test_build_kwargs_that_would_replace_the_context_are_refused(key):
    with pytest.raises(ValueError, match=f"build_kwargs {key} cannot be given"):
        Docker(build_kwargs={key: "x"})


# -- build(): image name and tag (daemonless, against the real registry) -----------------------------

@pytest.fixture
def tiny_base(registry):  # noqa: F811
    return f"{registry.host}/" + push_tiny_base(RegistryClient(registry.url))


def _built(storage):
    out = storage.build(daemonless=True)
    assert out is storage
    return out


def test_build_base_image(registry, tiny_base):  # noqa: F811
    import datetime

    output = _built(Docker(registry_url=registry.url, base_image=tiny_base))
    assert output.registry_url == registry.url
    assert output.image_name
    assert output.image_tag.startswith(str(datetime.datetime.now(datetime.UTC).year))
    assert output.image_digest.startswith("sha256:")


def test_build_sets_informative_image_name(registry, tiny_base):  # noqa: F811
    storage = Docker(registry_url=registry.url, base_image=tiny_base)
    storage.add_flow(Flow("test"))
    assert _built(storage).image_name == "test"


def test_build_sets_image_name_for_multiple_flows(registry, tiny_base):  # noqa: F811
    storage = Docker(registry_url=registry.url, base_image=tiny_base)
    storage.add_flow(Flow("test"))
    storage.add_flow(Flow("test2"))
    name = _built(storage).image_name
    assert isinstance(name, str) and len(name) == 36  # a uuid4


def test_build_respects_user_provided_image_name_and_tag(registry, tiny_base):  # noqa: F811
    storage = Docker(registry_url=registry.url, base_image=tiny_base, image_name="custom", image_tag="ONE")
    storage.add_flow(Flow("test"))
    output = _built(storage)
    assert (output.image_name, output.image_tag) == ("custom", "ONE")


def test_build_respects_user_provided_image_name_and_tag_for_multiple_flows(registry, tiny_base):  # noqa: F811
    storage = Docker(registry_url=registry.url, base_image=tiny_base, image_name="custom", image_tag="TAG")
    storage.add_flow(Flow("test"))
    storage.add_flow(Flow("test2"))
    output = _built(storage)
    assert (output.image_name, output.image_tag) == ("custom", "TAG")
    manifest, digest, _ = RegistryClient(registry.url).manifest("custom", "TAG")
    assert digest == output.image_digest


def test_build_sets_informative_image_name_for_weird_name_flows(registry, tiny_base):  # noqa: F811
    storage = Docker(registry_url=registry.url, base_image=tiny_base)
    storage.add_flow(Flow("!&& ~~ cool flow :shades:"))
    assert _built(storage).image_name == "cool-flow-shades"


def test_daemonless_build_copies_folders_and_relative_destinations(registry, tiny_base, tmp_path):  # noqa: F811
    from gitflows.docker.image import read_file

    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "m.py").write_text("x = 1\n")
    (tmp_path / "a.txt").write_text("a")
    storage = Docker(registry_url=registry.url, base_image=tiny_base, image_name="folders", image_tag="v1",
                     files={str(tmp_path / "mods"): "/modules", str(tmp_path / "a.txt"): "conf/a.txt"})
    storage.add_flow(Flow("f"))
    storage.build(daemonless=True)
    client = RegistryClient(registry.url)
    assert read_file(client, "folders", storage.image_digest, "/modules/m.py") == b"x = 1\n"
    assert read_file(client, "folders", storage.image_digest, "/conf/a.txt") == b"a"  # under WorkingDir (/)
    assert from_dict(storage.serialize()).get_flow("f") == Flow("f")  # read from the registry by digest


# -- the generated Dockerfile --------------------------------------------------------------------

def test_create_dockerfile_from_base_image(tmp_path):
    with pytest.warns(UserWarning, match="base image python:3.7 runs Python 3.7"):
        output = dockerfile_of(Docker(base_image=f"python:{PY}"), tmp_path)
        dockerfile_of(Docker(base_image="python:3.7"), tmp_path)
    assert output.startswith(f"FROM python:{PY}\n")


def test_base_image_of_another_python_warns(tmp_path):
    other = "3.7" if PY != "3.7" else "3.8"
    with pytest.warns(UserWarning, match=f"runs Python {other}, but the flows are built with Python {PY}"):
        Docker(base_image=f"python:{other}-slim").create_dockerfile_object(str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Docker(base_image=f"python:{PY}-slim").create_dockerfile_object(str(tmp_path))


def test_create_dockerfile_from_dockerfile(tmp_path):
    myfile = "FROM my-own-image:latest\n\nRUN echo 'hi'"
    (tmp_path / "myfile").write_text(myfile)
    output = dockerfile_of(Docker(dockerfile=str(tmp_path / "myfile")), tmp_path)
    assert output.startswith(myfile)
    assert all(line == line.lstrip() for line in output.split("\n"))


def test_copy_files(tmp_path):
    sub = tmp_path / "top" / "subdir"
    sub.mkdir(parents=True)
    (sub / "test.txt").write_text("asdf")
    directory = tmp_path / "ctx"
    directory.mkdir()
    storage = Docker(files={str(sub): "/test_dir", str(sub / "test.txt"): "/path/test_file.txt"})
    storage.add_flow(Flow("foo"))
    output = dockerfile_of(storage, directory)
    assert {"subdir", "test.txt"} <= set(os.listdir(directory))
    assert (directory / "subdir" / "test.txt").read_text() == "asdf"
    assert 'COPY ["subdir", "/test_dir"]' in output
    assert 'COPY ["test.txt", "/path/test_file.txt"]' in output


def test_copy_files_with_the_same_base_name_is_an_error(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "conf.txt").write_text(d)
    (tmp_path / "ctx").mkdir()
    storage = Docker(files={str(tmp_path / "a" / "conf.txt"): "/a", str(tmp_path / "b" / "conf.txt"): "/b"})
    with pytest.raises(ValueError, match="already exists in .*share the base name 'conf.txt'"):
        storage.create_dockerfile_object(str(tmp_path / "ctx"))


def test_copy_files_with_dockerignore(tmp_path):
    sub = tmp_path / "top" / "subdir"
    sub.mkdir(parents=True)
    (sub / "test.txt").write_text("asdf")
    (sub / ".dockerignore").write_text("test.txt")
    directory = tmp_path / "ctx"
    directory.mkdir()
    storage = Docker(files={str(sub): "/test_dir", str(sub / "test.txt"): "/path/test_file.txt"},
                     dockerignore=str(sub / ".dockerignore"))
    storage.add_flow(Flow("foo"))
    storage.create_dockerfile_object(directory=str(directory))
    assert (directory / ".dockerignore").read_text() == "test.txt"


def test_extra_dockerfile_commands(tmp_path):
    """Where Prefect put them: after the flows and files are copied, before the healthcheck."""
    (tmp_path / "f.txt").write_text("x")
    storage = Docker(extra_dockerfile_commands=['RUN echo "I\'m a little tea pot"'],
                     files={str(tmp_path / "f.txt"): "/f.txt"})
    storage.add_flow(Flow("foo"))
    (tmp_path / "ctx").mkdir()
    lines = dockerfile_of(storage, tmp_path / "ctx").splitlines()
    extra = lines.index('RUN echo "I\'m a little tea pot"')
    assert lines.index('COPY ["f.txt", "/f.txt"]') < extra
    assert lines.index('COPY ["foo.flow", "/opt/gitflows/flows/foo.flow"]') < extra
    assert extra < next(i for i, line in enumerate(lines) if "gitflows.docker.healthcheck" in line)


def test_dockerfile_env_vars(tmp_path):
    """Deliberate difference: values double-quoted (JSON escapes) and ``$`` escaped: taken literally."""
    env_vars = {"NUM": 1, "STR_WITH_SPACES": "Hello world!", "STR_WITH_QUOTES": 'Hello "friend"',
                "STR_WITH_SINGLE_QUOTES": "'foo'", "NOT_EXPANDED": "$PYTHONPATH:modules/"}
    storage = Docker(env_vars=env_vars)
    storage.add_flow(Flow("foo"))
    expected = ('ENV NUM="1" \\\n    STR_WITH_SPACES="Hello world!" \\\n    STR_WITH_QUOTES="Hello \\"friend\\"" \\\n'
                '    STR_WITH_SINGLE_QUOTES="\'foo\'" \\\n    NOT_EXPANDED="\\$PYTHONPATH:modules/"\n')
    assert expected in dockerfile_of(storage, tmp_path)


def test_create_dockerfile_from_dockerfile_uses_tempdir_path(tmp_path):
    """Deliberate difference: the generated files are copied from ``.gitflows-build/`` in the Dockerfile's
    own folder (the build context); Prefect wrote absolute temporary paths."""
    myfile = "FROM my-own-image:latest\n\nRUN echo 'hi'"
    (tmp_path / "test").write_text("asdf")
    user = tmp_path / "user"
    user.mkdir()
    (user / "myfile").write_text(myfile)
    directory = tmp_path / "generated"
    directory.mkdir()
    storage = Docker(dockerfile=str(user / "myfile"), files={str(tmp_path / "test"): "./test2"})
    storage.add_flow(Flow("foo"))
    output = dockerfile_of(storage, directory)
    assert 'COPY [".gitflows-build/foo.flow", "/opt/gitflows/flows/foo.flow"]' in output
    assert 'COPY [".gitflows-build/test", "./test2"]' in output
    assert output.startswith(myfile)
    assert all(line == line.lstrip() for line in output.split("\n"))


@pytest.mark.parametrize("version,expected", [
    ("0.5.3", '"gitflows==0.5.3"'),
    ("gitflows @ git+https://git.example.com/gitflows.git@main", '"gitflows @ git+https://git.example.com/gitflows'
                                                                  '.git@main"'),
])
def test_create_dockerfile_from_prefect_version(tmp_path, version, expected):
    """Deliberate difference: a version is installed from the ``wheelhouse`` (no package index holds
    gitflows), or is a whole pip requirement; Prefect installed a branch or commit from GitHub."""
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    output = dockerfile_of(Docker(prefect_version=version, base_image=f"python:{PY}-slim", wheelhouse=str(wheelhouse)),
                           tmp_path / "ctx")
    assert f"FROM python:{PY}-slim" in output
    assert expected in output


def test_without_a_wheelhouse_the_image_gets_the_checkouts_own_wheel(tmp_path):
    """No package index holds gitflows: the image never installs ``gitflows`` by name; it gets a wheel built
    from this checkout. Another version without a wheelhouse is an error saying what to give."""
    from gitflows.version import __version__

    output = dockerfile_of(Docker(base_image=f"python:{PY}-slim"), tmp_path / "ctx")
    assert '"gitflows"]' not in output and "gitflows==" not in output
    wheel = next((tmp_path / "ctx" / "gitflows-wheel").glob(f"gitflows-{__version__}-*.whl"))
    assert f'COPY ["gitflows-wheel/{wheel.name}", "/opt/gitflows-wheel/{wheel.name}"]' in output
    assert f'"/opt/gitflows-wheel/{wheel.name}"]' in output.split("RUN")[2]
    with pytest.raises(ValueError, match="gitflows_version='0.5.3' is not the gitflows running here"):
        dockerfile_of(Docker(prefect_version="0.5.3", base_image=f"python:{PY}-slim"), tmp_path / "ctx2")


def test_a_branch_name_as_version_is_an_error():
    with pytest.raises(ValueError, match="gitflows_version 'master' is neither a version"):
        Docker(prefect_version="master")


def test_create_dockerfile_with_weird_flow_name(tmp_path):
    storage = Docker(registry_url="test1", base_image="test3")
    storage.add_flow(Flow("WHAT IS THIS !!! ~~~~"))
    assert 'COPY ["what-is-this.flow", "/opt/gitflows/flows/what-is-this.flow"]' in dockerfile_of(storage, tmp_path)


def test_create_dockerfile_with_complex_python_dependencies(tmp_path):
    storage = Docker(registry_url="test1", base_image="test3",
                     python_dependencies=["lib[flavor]<2.0.0,>=1.1.1", "other-lib"])
    assert ('"--no-cache-dir", "lib[flavor]<2.0.0,>=1.1.1", "other-lib"]' in dockerfile_of(storage, tmp_path))


def test_create_dockerfile_with_weird_flow_name_custom_prefect_dir(tmp_path):
    storage = Docker(registry_url="test1", base_image="test3", prefect_directory="/tmp/prefect-is-c00l")
    storage.add_flow(Flow("WHAT IS THIS !!! ~~~~"))
    assert ('COPY ["what-is-this.flow", "/tmp/prefect-is-c00l/flows/what-is-this.flow"]'
            in dockerfile_of(storage, tmp_path))


def test_create_dockerfile_from_everything(tmp_path, no_docker_host_var):
    (tmp_path / "test").write_text("asdf")
    (tmp_path / "ctx").mkdir()
    storage = Docker(registry_url="test1", base_image="test3", python_dependencies=["test"], image_name="test4",
                     image_tag="test5", files={str(tmp_path / "test"): "./test2"}, base_url="test_url")
    storage.add_flow(Flow("test"))
    storage.add_flow(Flow("other"))
    output = dockerfile_of(storage, tmp_path / "ctx")
    assert "FROM test3" in output
    assert 'COPY ["test", "./test2"]' in output
    assert 'COPY ["test.flow", "/opt/gitflows/flows/test.flow"]' in output
    assert 'COPY ["other.flow", "/opt/gitflows/flows/other.flow"]' in output
    assert '"gitflows.docker.healthcheck"' in output


def test_create_dockerfile_with_flow_file(tmp_path, no_docker_host_var):
    """Deliberate difference: ``stored_as_script=True`` without ``path`` fails when the storage is made
    (Prefect: when the Dockerfile was written)."""
    full_path = tmp_path / "flow.py"
    full_path.write_text("from gitflows import Flow\nf=Flow('test-flow')")
    (tmp_path / "ctx").mkdir()
    storage = Docker(files={str(full_path): "flow.py"}, stored_as_script=True, path="flow.py")
    storage.add_flow(Flow("test-flow"))
    output = dockerfile_of(storage, tmp_path / "ctx")
    assert 'COPY ["flow.py", "flow.py"]' in output
    assert ".flow\"" not in output  # the script is the user's file: no pickle is written
    with pytest.raises(ValueError, match="stored_as_script=True needs path="):
        Docker(files={str(full_path): "flow.py"}, stored_as_script=True)


@pytest.mark.parametrize("ignore_healthchecks", [True, False])
def test_run_healthchecks_arg(tmp_path, ignore_healthchecks):
    storage = Docker(ignore_healthchecks=ignore_healthchecks)
    storage.add_flow(Flow("test"))
    output = dockerfile_of(storage, tmp_path)
    assert ("gitflows.docker.healthcheck" in output) is not ignore_healthchecks


@pytest.mark.parametrize("ignore_healthchecks", [True, False])
def test_run_healthchecks_arg_custom_prefect_dir(tmp_path, ignore_healthchecks):
    storage = Docker(ignore_healthchecks=ignore_healthchecks, prefect_directory="/usr/local/prefect")
    storage.add_flow(Flow("test"))
    output = dockerfile_of(storage, tmp_path)
    checks = [line for line in output.splitlines() if "gitflows.docker.healthcheck" in line]
    if ignore_healthchecks:
        assert checks == []
    else:
        spec = json.loads(json.loads(checks[0][len("RUN "):])[-1])
        assert spec == {"flows": {"test": "/usr/local/prefect/flows/test.flow"}, "stored_as_script": False,
                        "python": PY}


# -- pull and push, against the real daemon and registry ---------------------------------------------

@pytest.mark.slow
def test_pull_image(dockerd, registry, tiny_base, capsys):  # noqa: F811
    storage = Docker(base_image=tiny_base, base_url=dockerd.url)
    storage.pull_image()
    assert storage.create_docker_client().images(name=tiny_base.rsplit(":", 1)[0])
    captured = capsys.readouterr()
    assert "Downloaded newer image" in captured.err  # Docker's progress goes to stderr
    assert captured.out == ""


@pytest.mark.slow
def test_pull_image_raises_if_error_encountered(dockerd, registry):  # noqa: F811
    storage = Docker(base_image=f"{registry.host}/nothing/here:1", base_url=dockerd.url)
    with pytest.raises(InterruptedError, match=f"pulling {registry.host}/nothing/here:1 failed: .*not found") as err:
        storage.pull_image()
    assert isinstance(err.value, ImageTransferError)


@pytest.mark.slow
def test_push_image(dockerd, registry, tiny_base):  # noqa: F811
    storage = Docker(base_image=tiny_base, base_url=dockerd.url)
    storage.pull_image()
    client = storage.create_docker_client()
    client.tag(tiny_base, f"{registry.host}/pushed/again", "t1")
    storage.push_image(image_name=f"{registry.host}/pushed/again", image_tag="t1")
    _, digest, _ = RegistryClient(registry.url).manifest("pushed/again", "t1")
    assert storage.image_digest == digest


@pytest.mark.slow
def test_push_image_raises_if_error_encountered(dockerd, registry):  # noqa: F811
    storage = Docker(base_image="python:3.7", base_url=dockerd.url)
    with pytest.raises(InterruptedError, match=f"pushing {registry.host}/never/built:test failed: .*does not exist"):
        storage.push_image(image_name=f"{registry.host}/never/built", image_tag="test")


def test_docker_storage_name():
    storage = Docker(base_image="python:3.7")
    with pytest.raises(ValueError, match="missing required fields image_name and image_tag"):
        storage.name  # noqa: B018
    storage.registry_url = "test1"
    storage.image_name = "test2"
    storage.image_tag = "test3"
    assert storage.name == "test1/test2:test3"
    storage.registry_url = "http://127.0.0.1:5000/team"  # the scheme is not part of an image name
    assert storage.name == "127.0.0.1:5000/team/test2:test3"


@pytest.mark.parametrize("contents,expected", [
    ({"stream": "hello"}, "[docker build] hello\n"),
    ({"message": "hello"}, "[docker build] hello\n"),
    ({"errorDetail": {"message": "hello"}}, ""),  # an error goes into the ImageBuildError, not the stream
    ({"unknown": "hello"}, ""),
    ([], ""),
    ([{}, {}], ""),
    ([{"stream": "hello"}, {"stream": "world"}], "[docker build] hello\n[docker build] world\n"),
])
def test_docker_storage_output_stream(contents, expected, capsys):
    """Deliberate difference: build output goes to stderr, prefixed (Prefect printed it to stdout)."""
    build_output(contents if isinstance(contents, list) else [contents])
    captured = capsys.readouterr()
    assert (captured.err, captured.out) == (expected, "")


def test_build_output_collects_errors(capsys):
    seen, errors = build_output([{"stream": "Step 1/2"}, {"errorDetail": {"message": "boom"}, "error": "boom"}])
    assert (seen, errors) == (["Step 1/2"], ["boom"])


def test_docker_storage_name_registry_url_none():
    storage = Docker(base_image="python:3.7")
    with pytest.raises(ValueError):
        storage.name  # noqa: B018
    storage.image_name = "test2"
    storage.image_tag = "test3"
    assert storage.name == "test2:test3"


def test_docker_storage_get_flow_method(tmp_path):
    (tmp_path / "flows").mkdir()
    flow = Flow("test")
    (tmp_path / "flows" / "test.flow").write_bytes(flow_to_bytes_pickle(flow))
    storage = Docker(base_image="python:3.7", prefect_directory=str(tmp_path))
    storage.add_flow(flow)
    f = storage.get_flow(flow.name)
    assert isinstance(f, Flow)
    assert f.name == "test"


def test_get_flow_outside_the_image_without_a_pushed_digest_says_what_to_do():
    storage = Docker(base_image="python:3.7", image_name="x", image_tag="y")
    storage.add_flow(Flow("test"))
    restored = from_dict(storage.serialize())
    with pytest.raises(FileNotFoundError, match="not on this machine, and the image has no pushed digest"):
        restored.get_flow("test")


def test_add_similar_flows_fails():
    storage = Docker()
    flow = Flow("test")
    storage.add_flow(flow)
    with pytest.raises(ValueError, match="Name conflict"):
        storage.add_flow(flow)


def test_add_flow_with_weird_name_is_cleaned():
    loc = Docker().add_flow(Flow("WELL what do you know?!~? looks like a test!!!!"))
    assert not any(c in loc for c in "?! ~")


def test_two_pickled_flows_at_one_path_is_an_error():
    storage = Docker(path="/flows/one.flow")
    storage.add_flow(Flow("a"))
    with pytest.raises(ValueError, match="path='/flows/one.flow' holds one pickled flow, 'a'"):
        storage.add_flow(Flow("b"))


def test_tls_config_survives_serialization():
    import docker.tls

    tls = docker.tls.TLSConfig(verify=False)
    data = json.loads(json.dumps(Docker(tls_config=tls).serialize()))
    assert data["tls_config"]["verify"] is False
    assert isinstance(from_dict(data).tls_config, dict)


# -- real builds with the daemon: two images shared by the tests below -------------------------------

REPORTER = '''
import os
from gitflows import Flow, task

@task
def report():
    if os.environ.get("REPORT_FAIL"):
        print("about to fail", flush=True)
        raise RuntimeError("report asked to fail")
    if os.environ.get("REPORT_LIMITS"):  # what the kernel enforces on this container (cgroup v1 or v2)
        for name in ("memory/memory.limit_in_bytes", "memory.max", "pids/pids.max", "pids.max",
                     "cpu/cpu.cfs_quota_us", "cpu.max"):
            if os.path.exists("/sys/fs/cgroup/" + name):
                print("limit", name, open("/sys/fs/cgroup/" + name).read().strip(), flush=True)
    if os.environ.get("REPORT_HOG"):
        print("allocating", flush=True)
        hog = [bytearray(16 * 1024 * 1024) for _ in range(64)]  # 1 GiB, touched
        print("allocated", len(hog), flush=True)
    if os.environ.get("REPORT_SLOW"):
        import time

        print("first line, then a pause", flush=True)
        time.sleep(2)
    print("GREETING=" + os.environ["GREETING"], "LITERAL=" + os.environ["LITERAL"],
          "RUN_ENV=" + os.environ.get("RUN_ENV", "-"), flush=True)
    print("test_dir:", sorted(os.listdir("/test_dir")), "relative:", open("conf/a.txt").read(), flush=True)
    return 1

with Flow("reporter") as flow:
    report()
'''


@pytest.fixture(scope="module")
def built(dockerd, python_base, wheels, registry, tmp_path_factory):  # noqa: F811
    """Prefect's ``test_build_image_passes_and_pushes`` for real: files (a folder, a relative destination),
    a dockerignore, env_vars, extra commands and build_kwargs (an extra tag, labels), pushed to the registry."""
    from types import SimpleNamespace

    tmp = tmp_path_factory.mktemp("docker-built")
    script = tmp / "reporter.py"
    script.write_text(REPORTER)
    sub = tmp / "subdir"
    sub.mkdir()
    (sub / "test.txt").write_text("asdf")
    (sub / "ignored.txt").write_text("not in the image")
    (tmp / "a.txt").write_text("relative ok")
    (tmp / "dockerignore").write_text("subdir/ignored.txt\n")
    storage = Docker(registry_url=registry.url, base_image=python_base, local_image=True,
                     image_name="prefect1/everything", image_tag="v1", wheelhouse=str(wheels), base_url=dockerd.url,
                     files={str(sub): "/test_dir", str(tmp / "a.txt"): "conf/a.txt"},
                     dockerignore=str(tmp / "dockerignore"),
                     env_vars={"GREETING": 'hello \'quoted\' "world"', "LITERAL": "$HOME/x"},
                     extra_dockerfile_commands=['LABEL org.example.team="data"'],
                     build_kwargs={"tag": "prefect1/extra:tagged", "labels": {"org.example.built-by": "test"}})
    storage.add_flow(extract_flow_from_file(str(script)))
    client = storage.create_docker_client()
    before = {c["Id"] for c in client.containers(all=True)}
    storage.build(push=True)
    left = [c for c in client.containers(all=True) if c["Id"] not in before]
    return SimpleNamespace(storage=storage, client=client, leftover_containers=left, registry=registry)


def _files_in(client, image, folder):
    container = client.create_container(image, command=["true"])
    try:
        import io
        import tarfile

        stream, _ = client.get_archive(container, folder)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            return sorted(m.name for m in tar.getmembers() if m.isfile())
    finally:
        client.remove_container(container, force=True)


@pytest.mark.slow
def test_build_image_passes_and_pushes(built):
    storage, client = built.storage, built.client
    _, digest, _ = RegistryClient(built.registry.url).manifest("prefect1/everything", "v1")
    assert storage.image_digest == digest
    assert client.images(name=f"{built.registry.host}/prefect1/everything") == []  # removed after the push
    assert client.images(name="prefect1/extra")  # build_kwargs' tag: merged, not a crash


@pytest.mark.slow
def test_build_with_default_rm_true(built):
    assert built.leftover_containers == []  # Docker removed the intermediate containers


@pytest.mark.slow
def test_built_image_has_the_files_labels_and_env(built):
    client = built.client
    config = client.inspect_image("prefect1/extra:tagged")["Config"]
    labels = config["Labels"]
    assert json.loads(labels["io.gitflows.flows"]) == {"reporter": "/opt/gitflows/flows/reporter.flow"}
    assert labels["org.example.team"] == "data" and labels["org.example.built-by"] == "test"
    assert 'GREETING=hello \'quoted\' "world"' in config["Env"]
    assert "LITERAL=$HOME/x" in config["Env"]  # literal: no expansion
    assert _files_in(client, "prefect1/extra:tagged", "/test_dir") == ["test_dir/test.txt"]  # dockerignore applied
    assert _files_in(client, "prefect1/extra:tagged", "/conf/a.txt") == ["a.txt"]  # relative: under WORKDIR (/)


@pytest.mark.slow
def test_get_flow_from_a_serialized_storage_reads_the_image_by_digest(built):
    restored = from_dict(json.loads(json.dumps(built.storage.serialize())))
    flow = restored.get_flow("reporter")
    assert flow.name == "reporter" and [t.name for t in flow.tasks] == ["report"]


@pytest.mark.slow
def test_env_runner_runs_the_flow_in_a_container_with_the_env(built):
    restored = from_dict(json.loads(json.dumps(built.storage.serialize())))
    runner = restored.get_env_runner(restored.flows["reporter"])
    assert "@sha256:" in runner.image  # the pushed image, by digest
    result = runner.run({"RUN_ENV": "from-run"}, timeout=300)
    assert result.state == "success", result.logs
    assert result.tasks == {"report": "Success"}
    assert "RUN_ENV=from-run" in result.logs
    assert 'GREETING=hello \'quoted\' "world"' in result.logs and "LITERAL=$HOME/x" in result.logs
    assert "test_dir: ['test.txt'] relative: relative ok" in result.logs
    assert built.client.containers(all=True, filters={"ancestor": runner.image}) == []  # removed after the run


SCRIPT_FLOW = '''
from gitflows import Flow, task

@task
def hello():
    print("hello from", open("/srv/hello.txt").read().strip(), flush=True)

with Flow("script-flow") as flow:
    hello()
'''


@pytest.fixture(scope="module")
def script_image(built, wheels, tmp_path_factory):  # noqa: F811
    """A user Dockerfile (built from its own folder, honouring that folder's .dockerignore), script mode,
    ``build_kwargs={"rm": False, ...}``, not pushed."""
    from types import SimpleNamespace

    tmp = tmp_path_factory.mktemp("docker-script")
    user = tmp / "project"
    (user / "data").mkdir(parents=True)
    (user / "data" / "hello.txt").write_text("the user's folder")
    (user / "data" / "secret.txt").write_text("never in the context")
    (user / ".dockerignore").write_text("data/secret.txt\n")
    (user / "Dockerfile").write_text("FROM prefect1/extra:tagged\nCOPY data/ /srv/\n")
    script = tmp / "script_flow.py"
    script.write_text(SCRIPT_FLOW)
    storage = Docker(dockerfile=str(user / "Dockerfile"), stored_as_script=True, path="/srv/flows/script_flow.py",
                     files={str(script): "/srv/flows/script_flow.py"}, wheelhouse=str(wheels),
                     base_url=built.storage.base_url, build_kwargs={"rm": False, "nocache": False})
    storage.add_flow(extract_flow_from_file(str(script)))
    client = storage.create_docker_client()
    before = {c["Id"] for c in client.containers(all=True)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # push=False: no "will not be pushed" warning
        storage.build(push=False)
    left = [c["Id"] for c in client.containers(all=True) if c["Id"] not in before]
    yield SimpleNamespace(storage=storage, client=client, leftover_containers=left)
    for container in left:
        client.remove_container(container, force=True)


@pytest.mark.slow
def test_build_with_rm_override(script_image):
    assert script_image.leftover_containers  # rm=False: Docker kept the intermediate containers


@pytest.mark.slow
def test_user_dockerfile_builds_from_its_own_folder_and_runs_the_script(script_image):
    storage, client = script_image.storage, script_image.client
    assert storage.image_name == "script-flow" and client.images(name=storage.name)
    assert _files_in(client, storage.name, "/srv") == ["srv/flows/script_flow.py", "srv/hello.txt"]
    ticks = []
    runner = storage.get_env_runner("/srv/flows/script_flow.py")
    result = runner.run({}, timeout=300, tick=lambda: ticks.append(1), tick_every=0.1)
    assert result.state == "success", result.logs
    assert "hello from the user's folder" in result.logs
    assert ticks  # called while the container ran (once is all a fast container allows)
    late = runner.run({}, timeout=0.01)
    assert (late.state, late.error) == ("failed", f"timed out after 0.01s; container of {storage.name} killed")


@pytest.mark.slow
@pytest.mark.parametrize("registry_url", [True, None])
def test_build_image_fails_with_value_error(built, tmp_path, registry_url):
    """Also Prefect's ``test_build_image_fails_no_registry`` (``registry_url=None``)."""
    (tmp_path / "Dockerfile").write_text('FROM prefect1/extra:tagged\nRUN ["false"]\n')
    storage = Docker(dockerfile=str(tmp_path / "Dockerfile"), image_name="test", image_tag="latest",
                     registry_url=built.registry.url if registry_url else None, base_url=built.storage.base_url)
    with pytest.raises(ValueError, match="your docker image .*test:latest failed to build") as err:
        storage.build(push=bool(registry_url))
    assert isinstance(err.value, ImageBuildError)
    assert "returned a non-zero code: 1" in str(err.value)


def test_stored_as_script_without_the_file_fails_the_healthcheck_naming_it(registry, tiny_base):  # noqa: F811
    storage = Docker(registry_url=registry.url, base_image=tiny_base, stored_as_script=True, path="/srv/flow.py")
    storage.add_flow(Flow("f"))
    with pytest.raises(ValueError, match="flow 'f': /srv/flow.py is not in the image"):
        storage.build(daemonless=True)


def run_by_agent(tmp_path, storage_data, **agent_options):
    """Register the reporter flow with *storage_data* in a fresh registry, schedule one run and let an agent run
    it once: (the run as created, the agent's outcomes by run id, the run as recorded)."""
    from gitflows.agent import Agent
    from gitflows.registry import FlowVersion, open_registry

    url = str(tmp_path / "registry.db")
    reg = open_registry(url)
    reg.register(FlowVersion(name="reporter", version=0, storage=storage_data, repo=None, path=None, requested_ref=None,
                             sha=None, closure=[], fingerprint="fp", labels=[], state="confirmed", registered_at=0.0))
    run = reg.create_run("reporter")
    done = dict(Agent(url, poll=0.05, timeout=300, **agent_options).run(once=True))
    return run, done, reg.get_run(run.id)


def test_the_agent_runs_a_docker_flow_in_its_image(built, tmp_path):
    """Issue 15: the agent runs every flow through its storage's env runner; a Docker-stored flow runs in a
    container of its pushed image (it reads /test_dir, which only the image has), and the container goes."""

    runner = built.storage.get_env_runner("reporter")
    built.storage.pull_image(runner.image)  # by digest, as the runner would (other tests may not have yet)
    # a container a killed agent left behind (exited, never removed): the next run clears it
    left = built.client.create_container(runner.image, command=["true"],
                                         labels={"io.gitflows.run-container": "1", "io.gitflows.run": "999"})
    built.client.start(left)
    built.client.wait(left, timeout=60)
    run, done, finished = run_by_agent(tmp_path, built.storage.serialize())
    assert done[run.id] == "success", (finished.error, finished.logs)
    assert "test_dir: ['test.txt']" in finished.logs  # read inside the image
    # no run container left: neither this run's nor the one a killed agent left (other tests' failed builds
    # leave build containers of this image behind: those are docker build's, not runs')
    assert built.client.containers(all=True, filters={"label": "io.gitflows.run-container"}) == []


def test_a_failing_docker_run_is_recorded_with_its_logs(built, tmp_path, monkeypatch):
    """The storage's secrets reach the container's environment (resolved by the agent); here one makes the
    flow fail, and the run is recorded failed with the container's output."""

    monkeypatch.setenv("REPORT_FAIL", "yes-fail-1234")
    run, done, finished = run_by_agent(tmp_path, {**built.storage.serialize(), "secrets": ["REPORT_FAIL"]})
    assert done[run.id] == "failed"
    assert "about to fail" in finished.logs and "report asked to fail" in (finished.error or "") + finished.logs
    assert "yes-fail-1234" not in finished.logs + (finished.error or "")  # a secret's value never recorded
    assert built.client.containers(all=True, filters={"label": "io.gitflows.run-container"}) == []


def test_container_output_is_streamed_as_it_comes(built):
    import time

    runner = built.storage.get_env_runner("reporter")
    seen = []
    began = time.monotonic()
    result = runner.run({"REPORT_SLOW": "1"}, timeout=300, echo=lambda line: seen.append((time.monotonic(), line)))
    ended = time.monotonic()
    assert result.state == "success", (result.error, result.logs)
    first = next(t for t, line in seen if "first line, then a pause" in line)
    assert ended - first >= 1.5, f"the line arrived {ended - first:.2f}s before the end: not streamed"
    assert first > began


def test_container_limits_are_enforced_and_an_out_of_memory_kill_is_named(built, tmp_path, monkeypatch):
    """Issue 15: resource limits when asked (the agent's --container-memory/-cpus/-pids): the kernel enforces
    them inside the container, and a flow killed for passing the memory limit is recorded as out of memory."""
    from gitflows.docker.runner import Limits

    runner = built.storage.get_env_runner("reporter")
    runner.limits = Limits(memory="64m", cpus=0.5, pids=64)
    result = runner.run({"REPORT_LIMITS": "1"}, timeout=300)
    assert result.state == "success", (result.error, result.logs)
    limits = dict(line.split()[1:3] for line in result.logs.splitlines() if line.startswith("limit "))
    assert limits.get("memory/memory.limit_in_bytes", limits.get("memory.max")) == str(64 * 1024 * 1024), limits
    assert limits.get("pids/pids.max", limits.get("pids.max")) == "64", limits
    assert limits.get("cpu/cpu.cfs_quota_us", limits.get("cpu.max", "").split(" ")[0]) == "50000", limits

    # through an agent: REPORT_HOG reaches the container as one of the storage's secrets, resolved by the agent
    monkeypatch.setenv("REPORT_HOG", "1")
    run, done, finished = run_by_agent(tmp_path, {**built.storage.serialize(), "secrets": ["REPORT_HOG"]},
                                       container_limits=Limits(memory="64m"))
    assert done[run.id] == "failed"
    assert "out of memory (limits: memory 64 MiB)" in finished.error and "--container-memory" in finished.error
    assert "allocating" in finished.logs and "allocated" not in finished.logs.replace("allocating", "")
    assert built.client.containers(all=True, filters={"label": "io.gitflows.run-container"}) == []
