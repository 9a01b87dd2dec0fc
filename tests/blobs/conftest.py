from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from gitflows.storage.azure import Azure
from gitflows.storage.blob import BlobStorage
from gitflows.storage.gcs import GCS
from gitflows.storage.s3 import S3
from gitflows.storage.webhook import Webhook

from ..servers.blob_servers import (
    WebhookServer,
    azurite_connection_string,
    start_azurite,
    start_gcs,
    start_moto,
)
from ..servers.fixtures import free_port

KINDS = ["s3", "gcs", "azure", "webhook"]
WEBHOOK_TOKEN = "whk-S3cret-Token-0123456789"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@dataclass
class Backend:
    kind: str
    make: Callable[..., BlobStorage]  # make(bucket=..., **storage kwargs)
    raw_put: Callable[[str, bytes], None]  # write an object behind gitflows' back
    break_credentials: Callable[[], None]
    unreachable: Callable[[], BlobStorage]
    secret: str


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setenv("GITFLOWS_RETRY_BACKOFF", "0.01")


@pytest.fixture(scope="session")
def moto():
    proc = start_moto()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def gcs_server():
    proc = start_gcs()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    proc = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield proc
    proc.stop()


@pytest.fixture(params=KINDS)
def backend(request, monkeypatch, tmp_path):
    return BUILDERS[request.param](request, monkeypatch, tmp_path)


def _s3(request, monkeypatch, tmp_path):
    kind = "s3"
    moto = request.getfixturevalue("moto")
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    options = {"endpoint_url": f"http://127.0.0.1:{moto.port}", "region_name": "us-east-1"}
    client = boto3.client("s3", **options)
    bucket = f"flows-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)

    def make(bucket=bucket, **kw):
        return S3(bucket, client_options=options, **kw)

    def break_credentials():
        auth = start_moto(auth=True)
        request.addfinalizer(auth.stop)
        options["endpoint_url"] = f"http://127.0.0.1:{auth.port}"

    return Backend(kind, make, lambda k, d: client.put_object(Bucket=bucket, Key=k, Body=d), break_credentials,
                   lambda: S3(bucket, client_options={"endpoint_url": f"http://127.0.0.1:{free_port()}",
                                                      "region_name": "us-east-1"}), AWS_SECRET)


def _gcs(request, monkeypatch, tmp_path):
    kind = "gcs"
    server = request.getfixturevalue("gcs_server")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.port}")
    from google.cloud import storage

    client = storage.Client(project="test")
    bucket = f"flows-{uuid.uuid4().hex[:12]}"
    client.create_bucket(bucket)

    def make(bucket=bucket, **kw):
        return GCS(bucket, project="test", **kw)

    def break_credentials():
        bad = tmp_path / "bad-credentials.json"
        bad.write_text('{"type": "service_account", "project_id": "test", "private_key": "not a key"}')
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(bad))
        monkeypatch.delenv("STORAGE_EMULATOR_HOST")

    def unreachable():
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
        return GCS(bucket, project="test")

    return Backend(kind, make, lambda k, d: client.bucket(bucket).blob(k).upload_from_string(d),
                   break_credentials, unreachable, "not a key")


def _azure(request, monkeypatch, tmp_path):
    kind = "azure"
    server = request.getfixturevalue("azurite")
    conn = azurite_connection_string(server.port)
    monkeypatch.setenv("AZ_CONN", conn)
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(conn)
    container = f"flows-{uuid.uuid4().hex[:12]}"
    service.create_container(container)

    def make(bucket=container, **kw):
        if "key" in kw:
            kw["blob_name"] = kw.pop("key")
        return Azure(bucket, connection_string_secret="AZ_CONN", **kw)

    wrong_key = "V3JvbmdLZXlWYWx1ZVRoYXRJc0xvbmdFbm91Z2hUb0xvb2tSZWFsMDEyMzQ1Njc4OQ=="

    def break_credentials():
        monkeypatch.setenv("AZ_CONN", azurite_connection_string(server.port, wrong_key))

    def unreachable():
        monkeypatch.setenv("AZ_CONN", azurite_connection_string(free_port()))
        return Azure(container, connection_string_secret="AZ_CONN")

    return Backend(kind, make,
                   lambda k, d: service.get_container_client(container).upload_blob(k, d, overwrite=True),
                   break_credentials, unreachable, wrong_key)


def _webhook(request, monkeypatch, tmp_path):
    kind = "webhook"
    server = WebhookServer(token=WEBHOOK_TOKEN)
    request.addfinalizer(server.stop)
    monkeypatch.setenv("WEBHOOK_TOKEN", WEBHOOK_TOKEN)
    monkeypatch.setenv("WEBHOOK_URL", server.url)

    def make(bucket="flows", **kw):
        kw.pop("key", None)
        headers = {"Authorization": "Bearer ${WEBHOOK_TOKEN}"}
        return Webhook(build_request_kwargs={"url": "${WEBHOOK_URL}/" + bucket + "/${GITFLOWS_KEY}", "headers": headers},
                       build_request_http_method="POST",
                       get_flow_request_kwargs={"url": "${WEBHOOK_URL}/" + bucket + "/${GITFLOWS_KEY}", "headers": headers},
                       get_flow_request_http_method="GET", **kw)

    def break_credentials():
        monkeypatch.setenv("WEBHOOK_TOKEN", "wrong-" + WEBHOOK_TOKEN)

    def unreachable():
        monkeypatch.setenv("WEBHOOK_URL", f"http://127.0.0.1:{free_port()}")
        return make()

    return Backend(kind, make, lambda k, d: server.objects.__setitem__(f"/flows/{k}", d), break_credentials,
                   unreachable, WEBHOOK_TOKEN)


BUILDERS = {"s3": _s3, "gcs": _gcs, "azure": _azure, "webhook": _webhook}
