"""The registry client against a real docker-registry that takes bearer tokens from a token service (the
scheme of Docker Hub, GHCR, GitLab's registry): the challenge is answered with the user's credentials, tokens
are scoped per repository, never printed; a token service that is down, failing or answering garbage is
retried under gitflows' policy and ends in a gitflows error naming it, with no library exception attached."""

from __future__ import annotations

import logging

import pytest

from gitflows.docker.registry import RegistryClient
from gitflows.errors import AuthenticationError, RemoteError

from ..hosts.conftest import assert_secret_hidden
from ..servers.docker_servers import Registry
from ..servers.token_auth import TokenService
from .conftest import push_tiny_base

PASSWORD = "t0ken-Service-Pa55word"


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("token-registry")
    service = TokenService(tmp, "robot", PASSWORD)
    registry = Registry(tmp, token_auth=service.registry_auth())
    yield registry, service
    registry.stop()
    service.stop()


@pytest.fixture
def service(token_registry, monkeypatch):
    monkeypatch.setenv("GITFLOWS_RETRY_BACKOFF", "0.01")
    registry, service = token_registry
    service.mode = "ok"
    service.requests.clear()
    return service


def test_push_and_pull_with_tokens_from_the_token_service(token_registry, service, caplog):
    registry, _ = token_registry
    caplog.set_level(logging.DEBUG)
    client = RegistryClient(registry.url, username="robot", password=PASSWORD)
    image = push_tiny_base(client, repo="team/tiny")
    manifest, digest, _ = client.manifest(*image.split(":"))
    assert manifest["layers"] and digest.startswith("sha256:")
    assert service.requests and all(r["authorized"] for r in service.requests)
    scopes = {s for r in service.requests for s in r["query"].get("scope", [])}
    assert any(s.startswith("repository:team/tiny:") and "push" in s for s in scopes), scopes
    token = client._token
    assert token and token not in caplog.text and PASSWORD not in caplog.text


def test_wrong_credentials_are_an_authentication_error(token_registry, service):
    registry, _ = token_registry
    client = RegistryClient(registry.url, username="robot", password="not-the-password")
    with pytest.raises(AuthenticationError) as err:
        client.manifest("team/tiny", "1")
    assert_secret_hidden("not-the-password", error=err.value)


@pytest.mark.parametrize("mode, says", [("500", "HTTP 500"), ("garbage", "without a token")])
def test_a_failing_token_service_is_retried_then_named(token_registry, service, mode, says):
    registry, _ = token_registry
    service.mode = mode
    client = RegistryClient(registry.url, username="robot", password=PASSWORD)
    with pytest.raises(RemoteError, match=says) as err:
        client.manifest("team/tiny", "1")
    assert len(service.requests) == 4  # every attempt asked the service again
    assert err.value.__cause__ is None and err.value.__context__ is None
    assert_secret_hidden(PASSWORD, error=err.value)


def test_a_token_service_that_hangs_up_is_no_answer_not_a_library_exception(token_registry, service):
    registry, _ = token_registry
    service.mode = "hangup"
    client = RegistryClient(registry.url, username="robot", password=PASSWORD)
    with pytest.raises(RemoteError, match="no answer.*token service") as err:
        client.manifest("team/tiny", "1")
    assert len(service.requests) == 4
    assert err.value.__cause__ is None and err.value.__context__ is None
