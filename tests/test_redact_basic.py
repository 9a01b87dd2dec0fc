"""The HTTP Basic form of a credential pair is a secret: wherever a header is echoed, it is masked."""

from __future__ import annotations

import base64

from gitflows.docker.registry import RegistryClient
from gitflows.hosts.git import Credentials
from gitflows.redact import redact


def b64(pair: str) -> str:
    return base64.b64encode(pair.encode()).decode()


def test_git_credentials_register_the_basic_form_and_hide_it_in_repr():
    creds = Credentials("robot", "tok-9f8e7d6c5b4a")
    assert redact(f"Authorization: Basic {b64('robot:tok-9f8e7d6c5b4a')}") == "Authorization: Basic ***"
    assert "tok-9f8e7d6c5b4a" not in repr(creds)
    assert redact("user robot") == "user robot"  # the user name alone is ordinary data
    bearer = Credentials(bearer="bear-1234567890")
    assert "bear-1234567890" not in repr(bearer) and redact("Bearer bear-1234567890") == "Bearer ***"


def test_registry_client_registers_its_basic_form():
    RegistryClient("http://127.0.0.1:9", username="robot", password="regPa55-xyz-123")
    assert redact(f"Basic {b64('robot:regPa55-xyz-123')}") == "Basic ***"


def test_a_sas_signature_is_masked_in_a_reordered_query():
    from gitflows.blobs.azure import _register_sas_signature

    _register_sas_signature("sv=2020-08-04&ss=b&sig=AbC%2Bdef123%3D&se=2030")
    assert redact("GET /c/b?se=2030&sig=AbC%2Bdef123%3D&sv=2020-08-04") == "GET /c/b?se=2030&sig=***&sv=2020-08-04"
    assert redact("signature AbC+def123=") == "signature ***"
