from __future__ import annotations

import json

import pytest

from gitflows import Flow
from gitflows.errors import ConfigurationError
from gitflows.storage import STORAGE_TYPES, Storage, from_dict, storage_class
from gitflows.storage.azure import Azure
from gitflows.storage.bitbucket import Bitbucket
from gitflows.storage.codecommit import CodeCommit
from gitflows.storage.docker import Docker
from gitflows.storage.gcs import GCS
from gitflows.storage.git import Git
from gitflows.storage.github import GitHub
from gitflows.storage.gitlab import GitLab
from gitflows.storage.local import Local
from gitflows.storage.module import Module
from gitflows.storage.s3 import S3
from gitflows.storage.webhook import Webhook

# One example per registered type; a new backend must add itself here (the test below checks).
EXAMPLES = {
    "Local": lambda tmp: Local(directory=str(tmp), labels=["team-a"], secrets=["DB_PASSWORD"]),
    "Module": lambda tmp: Module("json", labels=["x"]),
    "GitHub": lambda tmp: _pinned(GitHub(repo="acme/flows", path="flows/etl.py", ref="main",
                                         access_token_secret="GH_TOKEN", base_url="http://127.0.0.1:1/api/v3")),
    "GitLab": lambda tmp: _pinned(GitLab(repo="group/sub/flows", host="http://127.0.0.1:1", path="flows/etl.py",
                                         ref="v1.0", access_token_secret="GL_TOKEN")),
    "Bitbucket": lambda tmp: _pinned(Bitbucket(project="ACME", repo="flows", workspace="acme", path="flows/etl.py",
                                               cloud_username_secret="BB_USER",
                                               cloud_app_password_secret="BB_PASSWORD")),
    "CodeCommit": lambda tmp: _pinned(CodeCommit(repo="flows", path="flows/etl.py", commit="main",
                                                 client_options={"region_name": "eu-west-1"})),
    "Git": lambda tmp: _pinned(Git(flow_path="flows/etl.py", repo="acme/flows", repo_host="git.example.com",
                                   flow_name="etl", git_token_secret_name="GIT_TOKEN", branch_name="main")),
    "S3": lambda tmp: _digested(S3("flows", key="etl/v1", client_options={"region_name": "eu-west-1"},
                                   upload_options={"ServerSideEncryption": "AES256"})),
    "GCS": lambda tmp: _digested(GCS("flows", project="acme", stored_as_script=True, key="flows/etl.py",
                                     local_script_path="flows/etl.py")),
    "Azure": lambda tmp: _digested(Azure("flows", connection_string_secret="AZ_CONN", blob_name="etl.pickle")),
    "Webhook": lambda tmp: _digested(Webhook({"url": "https://hooks.example.com/${GITFLOWS_KEY}",
                                              "headers": {"Authorization": "Bearer ${TOKEN}"}}, "POST",
                                             {"url": "https://hooks.example.com/${GITFLOWS_KEY}"}, "GET")),
    "Docker": lambda tmp: _pushed(Docker(registry_url="http://127.0.0.1:1", base_image="python:3.11-slim",
                                         image_name="flows/etl", image_tag="v1", python_dependencies=["pandas==2.2"],
                                         env_vars={"MODE": "prod"}, registry_password_secret="REG_PASSWORD")),
}


def _pushed(storage):
    storage.image_digest = "sha256:" + "e" * 64
    return storage


def _digested(storage):
    """A blob storage as build() leaves it: the sha256 of each upload recorded."""
    storage.digests = {"some-flow": "d" * 64}
    return storage


def _pinned(storage):
    """A repository storage as build() leaves it: sha and closures recorded."""
    storage.sha = "a" * 40
    storage.closures = {"some-flow": [("flows/etl.py", "b" * 40), ("flows/lib/h.py", "c" * 40)]}
    return storage


def test_every_registered_type_has_an_example():
    assert set(EXAMPLES) == set(STORAGE_TYPES)


@pytest.mark.parametrize("type_name", sorted(STORAGE_TYPES))
def test_round_trip(type_name, tmp_path):
    storage = EXAMPLES[type_name](tmp_path)
    storage.flows["some-flow"] = "somewhere"
    data = storage.serialize()
    assert data["type"] == type_name
    json.dumps(data)
    rebuilt = from_dict(json.loads(json.dumps(data)))
    assert type(rebuilt) is storage_class(type_name)
    assert rebuilt.serialize() == data
    assert rebuilt.flows == {"some-flow": "somewhere"}
    assert rebuilt.labels == storage.labels
    assert repr(rebuilt) == repr(storage)


def test_unknown_type_and_missing_fields():
    with pytest.raises(ConfigurationError, match="unknown storage type 'Nope'; known types: .*Local, Module"):
        from_dict({"type": "Nope"})
    with pytest.raises(ConfigurationError, match="no 'type' key"):
        from_dict({"module": "x"})
    with pytest.raises(ConfigurationError, match="lacks required field\\(s\\): module"):
        from_dict({"type": "Module"})
    with pytest.raises(ConfigurationError, match="is a dict"):
        from_dict(["Local"])


def test_base_storage_contract():
    with pytest.raises(TypeError, match="abstract"):
        Storage()

    class Sub(Storage):
        pass

    storage = Sub(labels=["l"], secrets=["S"])
    assert storage.labels == ["l"] and storage.secrets == ["S"]
    assert "x" not in storage and Flow("x") not in storage
    with pytest.raises(ConfigurationError, match="lists of names"):
        Sub(secrets="ONE_SECRET")


def test_secret_values_never_in_repr_or_serialize(monkeypatch, tmp_path):
    from gitflows.secrets import resolve_secret

    monkeypatch.setenv("DB_PASSWORD", "pa55-w0rd-value")
    resolve_secret("DB_PASSWORD")
    # even if a value ends up in a field by mistake, output is scrubbed
    storage = Local(directory=str(tmp_path / "pa55-w0rd-value"), secrets=["DB_PASSWORD"])
    assert "pa55-w0rd-value" not in repr(storage)
    assert "pa55-w0rd-value" not in json.dumps(storage.serialize())
    assert storage.serialize()["secrets"] == ["DB_PASSWORD"]
