"""Prefect 1.4.1's tests/storage/test_gcs_storage.py, ported to gitflows against gcp-storage-emulator.

Prefect replaced ``google.cloud`` with MagicMocks; here every flow really goes to a bucket of the
emulator on 127.0.0.1 and is read back from it. The ``GCP_CREDENTIALS`` secret (Prefect's
``prefect.context.secrets["GCP_CREDENTIALS"]``) is checked with a local OAuth token endpoint that
verifies the signed JWT of the service account before it hands out a token.

Not ported: none. ``test_create_gcs_client_go_case`` / ``test_create_gcs_client_no_project`` asserted
the arguments of Prefect's internal ``get_storage_client``; they are ported as round trips with and
without ``project`` (what a user sees is that both work).
"""

from __future__ import annotations

import base64
import json
import textwrap
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from gitflows import Flow
from gitflows.errors import AuthenticationError, BucketNotFoundError, FlowStorageError, PathNotFoundError
from gitflows.storage import GCS, from_dict
from gitflows.utilities.storage import flow_from_bytes_pickle, flow_to_bytes_pickle
from tests.blobs.conftest import gcs_server  # noqa: F401


class Bucket:
    def __init__(self, name: str, client) -> None:
        self.name, self.client = name, client

    def keys(self) -> list[str]:
        return sorted(b.name for b in self.client.list_blobs(self.name))

    def read(self, key: str) -> bytes:
        return self.client.bucket(self.name).blob(key).download_as_bytes()

    def put(self, key: str, data: bytes | str) -> None:
        self.client.bucket(self.name).blob(key).upload_from_string(data)


@pytest.fixture
def bucket(gcs_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{gcs_server.port}")
    monkeypatch.setenv("GITFLOWS_RETRY_BACKOFF", "0.01")
    monkeypatch.delenv("GCP_CREDENTIALS", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    from google.cloud import storage

    client = storage.Client(project="test")
    name = f"awesome-bucket-{uuid.uuid4().hex[:10]}"
    client.create_bucket(name)
    return Bucket(name, client)


class TestGCSStorage:
    def test_create_gcs_storage(self):
        storage = GCS(
            bucket="awesome-bucket",
            key="the-best-key",
            project="mayhem",
            secrets=["boo"],
        )

        assert storage
        assert len(storage._flows) == 0
        assert storage.bucket == "awesome-bucket"
        assert storage.key == "the-best-key"
        assert storage.project == "mayhem"
        assert storage.secrets == ["boo"]

    @pytest.mark.parametrize("project", ["a_project", None])
    def test_create_gcs_client(self, bucket, project):
        storage = GCS(bucket=bucket.name, project=project, key="k")
        storage.add_flow(Flow("f"))
        storage.build()
        assert flow_from_bytes_pickle(bucket.read("k")).name == "f"
        assert from_dict(storage.serialize()).get_flow().name == "f"
        if project:
            assert storage._gcs_client.project == project  # Prefect's property, billed to that project

    def test_add_flow_to_gcs(self):
        storage = GCS(bucket="awesome-bucket")

        f = Flow("awesome-flow")
        assert f.name not in storage
        key = storage.add_flow(f)

        # ensures that our auto-generation of key name
        # is Windows compatible
        assert key.startswith("awesome-flow/")
        assert ":" not in key and "\\" not in key
        assert f.name in storage

    def test_add_multiple_flows_to_gcs(self):
        storage = GCS(bucket="awesome-bucket")

        flows = (Flow("awesome-flow-1"), Flow("awesome-flow-2"))

        for f in flows:
            assert f.name not in storage
            assert storage.add_flow(f)
            assert f.name in storage

        assert len(storage.flows) == 2
        assert len(storage._flows) == 2

    def test_add_duplicate_flow_to_gcs(self):
        storage = GCS(bucket="awesome-bucket")

        f = Flow("awesome-flow")
        assert storage.add_flow(f)
        with pytest.raises(ValueError):
            storage.add_flow(f)

    def test_get_flow_from_gcs(self, bucket):
        f = Flow("awesome-flow")
        bucket.put("a-place", flow_to_bytes_pickle(f))

        storage = GCS(bucket=bucket.name, key="a-place")
        storage.add_flow(f)

        fetched_flow = storage.get_flow(f.name)

        assert fetched_flow.name == f.name

    def test_get_flow_from_gcs_as_file(self, bucket):
        f1 = Flow("flow-1")
        f2 = Flow("flow-2")
        flow_content = textwrap.dedent(
            """
            from gitflows import Flow
            f1 = Flow('flow-1')
            f2 = Flow('flow-2')
            """
        )
        bucket.put("a-place", flow_content)

        storage = GCS(bucket=bucket.name, key="a-place", stored_as_script=True)
        storage.add_flow(f1)
        storage.add_flow(f2)

        assert storage.get_flow(f1.name).name == f1.name
        assert storage.get_flow(f2.name).name == f2.name

    def test_get_flow_missing_object_is_a_flow_storage_error(self, bucket):
        """Prefect: FlowStorageError("Flow not found in bucket ..."). gitflows: PathNotFoundError, which is also a
        FlowStorageError (and a FileNotFoundError), naming the bucket and the key."""
        storage = GCS(bucket=bucket.name, key="nowhere")
        storage.add_flow(Flow("awesome-flow"))
        with pytest.raises(FlowStorageError, match=f"GCS bucket '{bucket.name}'.*'nowhere'.*no such object") as err:
            storage.get_flow("awesome-flow")
        assert isinstance(err.value, PathNotFoundError)

    def test_get_flow_missing_bucket(self, bucket):
        """Prefect: google.api_core.exceptions.NotFound. gitflows: BucketNotFoundError naming the bucket."""
        storage = GCS(bucket="nothing-here-" + bucket.name, key="nowhere")
        storage.add_flow(Flow("awesome-flow"))
        with pytest.raises(BucketNotFoundError, match="nothing-here-.*the bucket does not exist"):
            storage.build()
        with pytest.raises(BucketNotFoundError, match="nothing-here-.*the bucket does not exist"):
            storage.get_flow("awesome-flow")

    def test_build_no_upload_if_file_and_no_local_script_path(self, bucket):
        storage = GCS(bucket=bucket.name, stored_as_script=True)

        with pytest.raises(ValueError, match="local_script_path= .* or key="):
            storage.build()

        storage = GCS(bucket=bucket.name, stored_as_script=True, key="myflow.py")
        storage.add_flow(Flow("awesome-flow"))
        assert storage == storage.build()
        assert bucket.keys() == []

    def test_upload_script_if_path(self, bucket, tmpdir):
        with open(f"{tmpdir}/flow.py", "w") as tmpfile:
            tmpfile.write("foo")

        storage = GCS(
            bucket=bucket.name,
            stored_as_script=True,
            local_script_path=f"{tmpdir}/flow.py",
            key="key",
        )

        f = Flow("awesome-flow")
        assert f.name not in storage
        assert storage.add_flow(f)
        assert f.name in storage
        assert storage.build()

        assert bucket.keys() == [storage.flows[f.name]]
        assert bucket.read("key") == b"foo"

    def test_upload_script_without_key(self, bucket, tmp_path):
        """local_script_path and no key: the script goes under a key generated as Prefect did."""
        script = tmp_path / "flow.py"
        script.write_text("from gitflows import Flow\nflow = Flow('awesome-flow')\n")
        storage = GCS(bucket=bucket.name, stored_as_script=True, local_script_path=str(script))
        key = storage.add_flow(Flow("awesome-flow"))
        assert key.startswith("awesome-flow/")
        storage.build()
        assert bucket.keys() == [key] and bucket.read(key) == script.read_bytes()
        assert from_dict(storage.serialize()).get_flow("awesome-flow").name == "awesome-flow"

    def test_upload_single_flow_to_gcs(self, bucket):
        storage = GCS(bucket=bucket.name)

        f = Flow("awesome-flow")
        assert f.name not in storage
        assert storage.add_flow(f)
        assert f.name in storage
        assert storage.build()

        assert bucket.keys() == [storage.flows[f.name]]
        assert flow_from_bytes_pickle(bucket.read(storage.flows[f.name])) == f

    def test_upload_single_flow_with_custom_key_to_gcs(self, bucket):
        storage = GCS(bucket=bucket.name, key="the-best-key")

        f = Flow("awesome-flow")
        assert f.name not in storage
        assert storage.add_flow(f)
        assert f.name in storage
        assert storage.build()

        assert bucket.keys() == ["the-best-key"]
        assert flow_from_bytes_pickle(bucket.read("the-best-key")) == f

    def test_upload_multiple_flows_to_gcs(self, bucket):
        storage = GCS(bucket=bucket.name)

        flows = (Flow("awesome-flow-1"), Flow("awesome-flow-2"))
        for f in flows:
            storage.add_flow(f)

        assert storage.build()
        assert bucket.keys() == sorted(storage.flows[f.name] for f in flows)
        for f in flows:
            assert flow_from_bytes_pickle(bucket.read(storage.flows[f.name])) == f

    def test_put_get_and_run_single_flow_to_gcs(self, bucket):
        storage = GCS(bucket=bucket.name)

        f = Flow("awesome-flow")
        assert f.name not in storage
        assert storage.add_flow(f)
        assert f.name in storage
        assert storage.build()

        new_flow = flow_from_bytes_pickle(bucket.read(storage.flows[f.name]))
        assert new_flow.name == "awesome-flow"

        state = new_flow.run()
        assert state.is_successful()


# -- GCP_CREDENTIALS: a service account key, checked by a local token endpoint ---------------------------


class TokenServer:
    """An OAuth2 token endpoint that checks the service account's RS256-signed JWT against its public key."""

    def __init__(self) -> None:
        self.public_key = None  # set once the key exists (its token_uri names this server)
        self.grants: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                assertion = form["assertion"][0]
                header, payload, signature = assertion.split(".")
                claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
                ok = _verify(server.public_key, f"{header}.{payload}".encode(),
                             base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
                server.grants.append({"claims": claims, "valid": ok})
                body = json.dumps({"access_token": "ya29.local-token", "expires_in": 3600, "token_type": "Bearer"}
                                  if ok else {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
                self.send_response(200 if ok else 400)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def _verify(public_key, data: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def _service_account(token_uri: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "from-the-key", "private_key_id": uuid.uuid4().hex,
            "private_key": pem, "client_email": "flows@from-the-key.iam.gserviceaccount.com",
            "client_id": "1234567890", "token_uri": token_uri}
    return info, key.public_key()


def test_gcp_credentials_secret_is_used(bucket, monkeypatch, caplog):
    """Prefect 1 built the client from ``prefect.context.secrets["GCP_CREDENTIALS"]`` when set; gitflows reads
    the secret of that name. The token endpoint sees the service account's signed request, the upload lands."""
    caplog.set_level("DEBUG")
    server = TokenServer()
    info, server.public_key = _service_account(server.url)
    monkeypatch.setenv("GCP_CREDENTIALS", json.dumps(info))
    storage = GCS(bucket=bucket.name, key="with-service-account")
    storage.add_flow(Flow("sa-flow"))
    storage.build()
    assert flow_from_bytes_pickle(bucket.read("with-service-account")).name == "sa-flow"
    assert server.grants and {g["claims"]["iss"] for g in server.grants} == {info["client_email"]}
    assert all(g["valid"] for g in server.grants)
    assert storage._gcs_client.project == "from-the-key"  # Prefect: project or the key's project_id
    assert GCS(bucket=bucket.name, project="mayhem")._gcs_client.project == "mayhem"

    other, _ = _service_account(server.url)  # same account name, a key the token endpoint does not know
    monkeypatch.setenv("GCP_CREDENTIALS", json.dumps(dict(info, private_key=other["private_key"])))
    with pytest.raises(AuthenticationError) as err:
        from_dict(storage.serialize()).get_flow()
    assert not server.grants[-1]["valid"]
    assert other["private_key"] not in str(err.value) + caplog.text
    assert info["private_key"] not in caplog.text
