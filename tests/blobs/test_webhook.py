from __future__ import annotations

import json

import pytest

from gitflows import Flow
from gitflows.blobs.webhook import fill
from gitflows.errors import ConfigurationError, IntegrityError
from gitflows.storage import from_dict
from gitflows.storage.webhook import Webhook

from ..servers.blob_servers import WebhookServer


def test_templates_fill_nested_values_with_escapes(monkeypatch):
    """Prefect 1's rules: string values of dicts, recursively; keys and list items are sent as they are."""
    monkeypatch.setenv("HOST", "127.0.0.1:9")
    monkeypatch.setenv("TOKEN_W", "tok-value-123")
    value = {"url": "http://${HOST}/x", "headers": {"A": "Bearer $TOKEN_W", "B": "$$5"}, "list": ["${HOST}"], "n": 3,
             "${HOST}": "key"}
    assert fill(value) == {"url": "http://127.0.0.1:9/x", "headers": {"A": "Bearer tok-value-123", "B": "$5"},
                           "list": ["${HOST}"], "n": 3, "${HOST}": "key"}
    with pytest.raises(ConfigurationError, match="Template value 'NOPE_VAR' does not refer to an environment"):
        fill({"url": "http://x/${NOPE_VAR}"})
    with pytest.raises(ConfigurationError, match=r"request argument\['url'\] has an invalid template"):
        fill({"url": "http://x/${"})


def test_serialized_form_keeps_templates_and_build_responses_are_kept(monkeypatch, caplog):
    caplog.set_level("DEBUG")
    server = WebhookServer(token="hook-token-value-987")
    try:
        monkeypatch.setenv("HOOK_TOKEN", "hook-token-value-987")
        monkeypatch.setenv("HOOK_URL", server.url)
        kwargs = {"url": "${HOOK_URL}/f/${GITFLOWS_KEY}", "headers": {"Authorization": "Bearer ${HOOK_TOKEN}"}}
        storage = Webhook(kwargs, "PUT", kwargs, "GET")
        storage.add_flow(Flow("a"))
        storage.add_flow(Flow("b"))
        storage.build()
        assert set(storage.build_responses) == {"a", "b"}
        assert storage.build_responses["a"]["stored"].startswith("/f/a/")
        data = storage.serialize()
        assert data["build_request_kwargs"] == kwargs  # templates, never the values
        text = json.dumps(data) + repr(storage) + caplog.text
        assert "hook-token-value-987" not in text and server.url not in json.dumps(data)
        assert from_dict(data).get_flow(flow_name="b").name == "b"
        # the server hands back something else for "a": refused, not loaded
        key = storage.flows["a"]
        server.objects[f"/f/{key}"] = server.objects[f"/f/{storage.flows['b']}"]
        with pytest.raises(IntegrityError):
            from_dict(data).get_flow(flow_name="a")
    finally:
        server.stop()


def test_signed_pickles_required_when_a_key_is_configured(monkeypatch):
    server = WebhookServer()
    try:
        monkeypatch.setenv("HOOK_URL", server.url)
        kwargs = {"url": "${HOOK_URL}/f/${GITFLOWS_KEY}"}
        storage = Webhook(kwargs, "POST", kwargs, "GET")
        storage.add_flow(Flow("unsigned"))
        storage.build()
        monkeypatch.setenv("SIGNING", "signing-key-value")
        monkeypatch.setenv("GITFLOWS_SIGNING_KEY_SECRET", "SIGNING")
        with pytest.raises(IntegrityError, match="unsigned pickle refused"):
            from_dict(storage.serialize()).get_flow()
        signed = Webhook(kwargs, "POST", kwargs, "GET")
        signed.add_flow(Flow("signed"))
        signed.build()
        assert from_dict(signed.serialize()).get_flow().name == "signed"
    finally:
        server.stop()
