"""Prefect 1.4.1's tests/storage/test_azure_storage.py, ported to gitflows against a real Azurite.

Prefect mocked ``BlobServiceClient``; here every flow really goes to a container of Azurite on
127.0.0.1. Key-less connection strings and account URLs authenticate through azure-identity's
``DefaultAzureCredential`` against a second Azurite that serves HTTPS and checks OAuth bearer tokens
(``--oauth basic``: issuer, audience, lifetime), the token coming from a managed-identity endpoint
on 127.0.0.1 shaped as Azure App Service's (``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``): there is
no Microsoft Entra ID to run locally.

Deliberate differences (docs/prefect1.md, "Azure, Webhook"):
- ``connection_string=`` (the value; Prefect 1.4.1 had only the property, Prefect < 0.15.6 took the
  argument) is accepted with a warning, used in this process only, never serialized nor shown;
- ``overwrite=False`` and an existing blob: ``ObjectExistsError`` (a ``FileExistsError``) naming the
  container, the blob and ``overwrite=True`` (Prefect: Azure's ``ResourceExistsError``);
- ``stored_as_script=True`` with ``local_script_path=`` uploads the script (Prefect never uploaded).

Not ported: none. The mocked client calls are asserted as what Azurite holds afterwards;
``test_blob_service_client_property`` (which credential the client got) becomes a round trip with a
keyed connection string (same name) and ``test_keyless_connection_string_uses_default_azure_credential``
(no key: ``DefaultAzureCredential``, its token checked by the server).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from azure.storage.blob import AccountSasPermissions, BlobServiceClient, ResourceTypes, generate_account_sas

from gitflows import Flow, task
from gitflows.errors import (
    AuthenticationError,
    ConfigurationError,
    IntegrityError,
    ObjectExistsError,
    SecretNotFoundError,
)
from gitflows.storage import Azure, from_dict
from gitflows.utilities.storage import flow_from_bytes_pickle, flow_to_bytes_pickle
from tests.blobs.conftest import azurite, fast_retries  # noqa: F401
from tests.servers.blob_servers import AZURITE_KEY, Proc, azurite_binary, azurite_connection_string
from tests.servers.fixtures import free_port

ACCOUNT = "devstoreaccount1"
WRONG_KEY = "V3JvbmdLZXlWYWx1ZVRoYXRJc0xvbmdFbm91Z2hUb0xvb2tSZWFsMDEyMzQ1Njc4OQ=="

SCRIPT = b'''
from gitflows import Flow, task

@task
def answer():
    return 42

with Flow("test") as flow:
    answer()
'''


@task
def add_one(x):
    return x + 1


def flow_with_tasks(name: str = "test") -> Flow:
    with Flow(name) as flow:
        add_one(1)
    return flow


def same_flow(loaded: Flow, name: str = "test") -> bool:
    """A flow loaded back is the one stored: its name, its task, what it computes."""
    return loaded.name == name and [t.name for t in loaded.tasks] == ["add_one"] and \
        loaded.run().results["add_one"] == 2


@dataclass
class Account:
    connection_string: str
    container: str
    service: BlobServiceClient

    def blobs(self) -> dict[str, bytes]:
        client = self.service.get_container_client(self.container)
        return {b.name: client.download_blob(b.name).readall() for b in client.list_blobs()}

    def put(self, name: str, data: bytes) -> None:
        self.service.get_container_client(self.container).upload_blob(name, data, overwrite=True)


@pytest.fixture
def account(azurite, monkeypatch):  # noqa: F811
    conn = azurite_connection_string(azurite.port)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
    service = BlobServiceClient.from_connection_string(conn)
    container = f"flows-{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    return Account(conn, container, service)


def test_create_azure_storage():
    storage = Azure(container="test")
    assert storage
    assert storage.logger


def test_create_azure_storage_init_args():
    storage = Azure(
        container="test",
        connection_string_secret="conn",
        blob_name="name",
        secrets=["foo"],
    )
    assert storage
    assert storage.flows == dict()
    assert storage.container == "test"
    assert storage.connection_string_secret == "conn"
    assert storage.blob_name == "name"
    assert storage.secrets == ["foo"]
    assert storage.overwrite is False


def test_constructor_arguments_are_prefects():
    """Prefect 1.4.1's arguments, in its order and with its defaults; ``connection_string`` only after them."""
    import inspect

    params = list(inspect.signature(Azure).parameters.values())
    assert [(p.name, p.default) for p in params[:5]] == [
        ("container", inspect.Parameter.empty), ("connection_string_secret", None), ("blob_name", None),
        ("overwrite", False), ("stored_as_script", False)]
    assert params[-1].kind is inspect.Parameter.VAR_KEYWORD
    storage = Azure("flows", "AZ", "name", True, True, labels=["a"], add_default_labels=False)
    assert (storage.container, storage.connection_string_secret, storage.blob_name, storage.overwrite,
            storage.stored_as_script, storage.labels) == ("flows", "AZ", "name", True, True, ["a"])


def test_serialize_azure_storage():
    storage = Azure(container="test")
    serialized_storage = storage.serialize()

    assert serialized_storage["type"] == "Azure"
    assert serialized_storage["container"] == "test"
    assert serialized_storage["connection_string_secret"] is None
    rebuilt = from_dict(serialized_storage)
    assert isinstance(rebuilt, Azure) and rebuilt.container == "test" and rebuilt.overwrite is False


@pytest.mark.parametrize("secret_name", ["SECRET_NAME", "AZURE_STORAGE_CONNECTION_STRING"])
def test_blob_service_client_property(account, monkeypatch, secret_name):
    """Prefect checked which client it built; here the connection string from the secret reaches Azurite."""
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv(secret_name, account.connection_string)
    storage = Azure(container=account.container, connection_string_secret=secret_name)
    assert storage.connection_string == account.connection_string
    f = flow_with_tasks()
    key = storage.add_flow(f)
    storage.build()
    assert list(account.blobs()) == [key]
    assert same_flow(storage.get_flow(f.name))


@pytest.mark.parametrize(
    "secret_name,secret_arg",
    [
        ("SECRET_NAME", "conn_string_value_one"),
        ("AZURE_STORAGE_CONNECTION_STRING", "conn_string_value_two"),
    ],
)
def test_connection_string_property(monkeypatch, secret_name, secret_arg):
    monkeypatch.setenv(secret_name, secret_arg)
    storage = Azure(container="test", connection_string_secret=secret_name)
    assert storage.connection_string == secret_arg


def test_connection_string_property_defaults_to_azure_storage_connection_string(monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "conn_string_default")
    assert Azure(container="test").connection_string == "conn_string_default"


def test_connection_string_missing_is_a_clear_error(monkeypatch):
    """Prefect: ``Exception("Azure connection string not provided. Set AZURE_STORAGE_CONNECTION_STRING ...")``."""
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    storage = Azure(container="flows")
    with pytest.raises(SecretNotFoundError, match="Azure connection string not provided for container 'flows'.*"
                                                  "AZURE_STORAGE_CONNECTION_STRING"):
        storage.connection_string
    storage.add_flow(Flow("test"))
    with pytest.raises(SecretNotFoundError, match="connection_string_secret="):
        storage.build()


def test_connection_string_argument_is_used_never_serialized_nor_shown(account, monkeypatch, caplog, recwarn):
    """Deliberate difference: ``connection_string=`` (the value) is accepted, with a warning naming a better way."""
    caplog.set_level("DEBUG")
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    with pytest.warns(UserWarning, match="connection_string_secret='AZURE_STORAGE_CONNECTION_STRING'"):
        storage = Azure(container=account.container, connection_string=account.connection_string)
    assert "never serialized" in caplog.text
    assert storage.connection_string == account.connection_string
    f = flow_with_tasks()
    storage.add_flow(f)
    storage.build()
    assert same_flow(storage.get_flow(f.name))
    data = storage.serialize()
    assert "connection_string" not in data
    shown = json.dumps(data) + repr(storage) + caplog.text + "".join(str(w.message) for w in recwarn)
    assert account.connection_string not in shown and AZURITE_KEY not in shown
    # rebuilt elsewhere: the value did not travel, the default secret is read
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", account.connection_string)
    assert same_flow(from_dict(data).get_flow(f.name))


def test_connection_string_argument_never_uploaded_with_the_flow(account, monkeypatch):
    """``flow.storage = Azure(...)`` is pickled with the flow: without the connection string's value."""
    with pytest.warns(UserWarning):
        storage = Azure(container=account.container, connection_string=account.connection_string)
    f = flow_with_tasks()
    f.storage = storage
    storage.add_flow(f)
    storage.build()
    [data] = account.blobs().values()
    assert AZURITE_KEY.encode() not in data and b"AccountKey" not in data
    loaded = storage.get_flow(f.name)
    assert same_flow(loaded) and loaded.storage.container == account.container
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "from-the-default-secret")
    assert loaded.storage.connection_string == "from-the-default-secret"


def test_connection_string_argument_never_in_errors(account, caplog):
    caplog.set_level("DEBUG")
    bad = azurite_connection_string(int(account.connection_string.rsplit(":", 1)[1].split("/")[0]), WRONG_KEY)
    with pytest.warns(UserWarning):
        storage = Azure(container=account.container, connection_string=bad)
    storage.add_flow(Flow("test"))
    with pytest.raises(AuthenticationError, match="the connection_string argument") as err:
        storage.build()
    shown = str(err.value) + repr(err.value) + caplog.text + repr(storage)
    assert bad not in shown and WRONG_KEY not in shown
    with pytest.raises(ConfigurationError, match="not both"):
        Azure(container="flows", connection_string=bad, connection_string_secret="AZ")


@pytest.mark.parametrize("form", ["connection string", "account URL"])
def test_shared_access_signature_connection_string(account, monkeypatch, caplog, form):
    """A key-less connection string with ``SharedAccessSignature=`` signs requests itself (Prefect: credential None);
    so does an account URL carrying a SAS token."""
    caplog.set_level("DEBUG")
    sas = generate_account_sas(ACCOUNT, AZURITE_KEY, ResourceTypes(container=True, object=True),
                               AccountSasPermissions(read=True, write=True, list=True, create=True),
                               expiry=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1))
    endpoint = account.connection_string.split("BlobEndpoint=")[1].rstrip(";")
    monkeypatch.setenv("AZ_SAS", f"BlobEndpoint={endpoint};SharedAccessSignature={sas}" if form == "connection string"
                       else f"{endpoint}?{sas}")
    storage = Azure(container=account.container, connection_string_secret="AZ_SAS")
    f = flow_with_tasks()
    storage.add_flow(f)
    storage.build()
    assert same_flow(storage.get_flow(f.name))
    assert sas not in caplog.text and sas.split("sig=")[1] not in caplog.text


def test_add_flow_to_azure():
    storage = Azure(container="test")

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f)
    assert f.name in storage


def test_add_multiple_flows_to_Azure():
    storage = Azure(container="container")

    f = Flow("test")
    g = Flow("testg")
    assert f.name not in storage
    assert storage.add_flow(f)
    assert storage.add_flow(g)
    assert f.name in storage
    assert g.name in storage


def test_build_no_upload_if_file(account):
    storage = Azure(container=account.container, stored_as_script=True)

    with pytest.raises(ValueError, match="blob_name="):
        storage.build()

    storage = Azure(container=account.container, stored_as_script=True, blob_name="flow.py")
    storage.add_flow(Flow("test"))
    assert storage == storage.build()
    assert account.blobs() == {}


def test_upload_flow_to_azure(account):
    storage = Azure(container=account.container)

    f = flow_with_tasks()
    assert f.name not in storage
    key = storage.add_flow(f)
    assert storage.build()
    stored = account.blobs()
    assert list(stored) == [key]
    assert same_flow(flow_from_bytes_pickle(stored[key]))
    assert len(stored[key]) == len(flow_to_bytes_pickle(f))
    assert f.name in storage


def test_upload_flow_to_azure_blob_name(account):
    storage = Azure(container=account.container, blob_name="name")

    f = Flow("test")
    assert storage.add_flow(f) == "name"
    assert storage.build()

    assert list(account.blobs()) == ["name"]


@pytest.mark.parametrize("overwrite", [True, False])
def test_upload_flow_to_azure_blob_overwrite(account, overwrite):
    account.put("name", b"an older object")
    storage = Azure(container=account.container, blob_name="name", overwrite=overwrite)

    f = flow_with_tasks()
    assert storage.add_flow(f)
    if overwrite:
        assert storage.build()
        assert same_flow(flow_from_bytes_pickle(account.blobs()["name"]))
    else:
        with pytest.raises(ObjectExistsError) as err:
            storage.build()
        assert isinstance(err.value, FileExistsError)
        message = str(err.value)
        assert f"container '{account.container}'" in message and "blob 'name' already exists" in message
        assert "overwrite=True" in message
        assert account.blobs() == {"name": b"an older object"}


def test_upload_multiple_flows_to_azure_blob_name(account):
    """Prefect's mock accepted both uploads; Azure itself refuses the second (overwrite=False): so does gitflows."""
    storage = Azure(container=account.container, blob_name="name")

    f1 = Flow("test1")
    f2 = Flow("test2")
    assert storage.add_flow(f1)
    assert storage.add_flow(f2)
    with pytest.raises(ObjectExistsError, match="blob 'name' already exists"):
        storage.build()

    assert flow_from_bytes_pickle(account.blobs()["name"]).name == "test1"


def test_upload_flow_to_azure_blob_name_format(account):
    storage = Azure(container=account.container)

    f = Flow("test")
    assert storage.add_flow(f)
    assert storage.build()

    [name] = account.blobs()
    key = name.split("/")
    assert key[0] == "test"
    assert key[1]


def test_add_flow_to_azure_already_added():
    storage = Azure(container="container")

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f)
    assert f.name in storage

    with pytest.raises(ValueError, match='Name conflict: Flow with the name "test" is already present'):
        storage.add_flow(f)


def test_get_flow_azure(account):
    f = flow_with_tasks()
    storage = Azure(container=account.container)

    assert f.name not in storage
    storage.add_flow(f)
    storage.build()

    assert same_flow(storage.get_flow(f.name))
    assert f.name in storage


def test_get_flow_azure_bucket_key(account):
    f = flow_with_tasks()
    storage = Azure(container=account.container, blob_name="name")

    assert f.name not in storage
    flow_location = storage.add_flow(f)
    storage.build()

    assert flow_location == "name"
    assert same_flow(storage.get_flow(f.name))
    account.put("name", flow_to_bytes_pickle(Flow("test")))  # changed behind the storage's back
    with pytest.raises(IntegrityError, match="does not match the recorded"):
        storage.get_flow(f.name)


def test_get_flow_azure_runs(account):
    f = Flow("test")
    storage = Azure(container=account.container)

    assert f.name not in storage
    storage.add_flow(f)
    storage.build()

    new_flow = storage.get_flow(f.name)
    assert f.name in storage

    assert isinstance(new_flow, Flow)
    assert new_flow.name == "test"
    assert len(new_flow.tasks) == 0

    state = new_flow.run()
    assert state.is_successful()


def test_get_flow_from_file_azure_runs(account):
    """The script uploaded by the user (Prefect 1 never uploaded scripts) is loaded and the named flow runs."""
    account.put("flows/test.py", SCRIPT)
    storage = Azure(container=account.container, stored_as_script=True, blob_name="flows/test.py")

    f = Flow("test")
    assert f.name not in storage
    storage.add_flow(f)
    storage.build()
    assert account.blobs() == {"flows/test.py": SCRIPT}  # nothing uploaded

    new_flow = storage.get_flow(f.name)

    assert isinstance(new_flow, Flow)
    assert new_flow.name == "test"
    assert len(new_flow.tasks) == 1

    state = new_flow.run()
    assert state.is_successful()
    assert state.results["answer"] == 42


def test_script_uploaded_from_local_script_path(account, tmp_path):
    """Deliberate difference: with ``local_script_path=`` the script is uploaded (once, for all its flows)."""
    source = SCRIPT + b'\nwith Flow("other") as other:\n    answer()\n'
    script = tmp_path / "test.py"
    script.write_bytes(source)
    storage = Azure(container=account.container, stored_as_script=True, blob_name="flows/test.py",
                    local_script_path=str(script))
    storage.add_flow(Flow("test"))
    storage.add_flow(Flow("other"))
    storage.build()  # overwrite=False: the second flow's identical upload is not attempted again
    assert account.blobs() == {"flows/test.py": source}
    rebuilt = from_dict(storage.serialize())
    assert rebuilt.get_flow("test").run().results["answer"] == 42
    assert rebuilt.get_flow("other").name == "other"


# -- key-less connection strings and account URLs: DefaultAzureCredential, as Prefect 1 -------------------


class ManagedIdentityEndpoint:
    """Azure App Service's managed identity endpoint (``GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=...``
    with header ``X-IDENTITY-HEADER``), answering tokens shaped as Entra ID's (a JWT: iss, aud, iat, nbf, exp)."""

    def __init__(self, header: str) -> None:
        self.requests: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests.append(self.path)
                if self.headers.get("X-IDENTITY-HEADER") != header:
                    self._reply(401, {"error": "invalid_request"})
                    return
                now = int(time.time())
                claims = {"aud": "https://storage.azure.com", "iss": f"https://sts.windows.net/{uuid.uuid4()}/",
                          "iat": now, "nbf": now - 60, "exp": now + 3600}
                token = ".".join(_b64(part) for part in ({"alg": "none", "typ": "JWT"}, claims)) + "."
                self._reply(200, {"access_token": token, "expires_on": str(now + 3600),
                                  "resource": "https://storage.azure.com", "token_type": "Bearer"})

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/msi/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _self_signed(tmp) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@dataclass
class OAuthAzurite:
    endpoint: str  # https://127.0.0.1:<port>/devstoreaccount1
    ca: str


@pytest.fixture(scope="module")
def oauth_azurite(tmp_path_factory):
    """Azurite over HTTPS checking bearer tokens (azure-storage-blob sends tokens only over HTTPS)."""
    binary = azurite_binary()
    if binary is None:
        pytest.fail("Azurite is not installed (.ci/run installs azurite@3.35.0 into .tools/)")
    tmp = tmp_path_factory.mktemp("azurite-oauth")
    cert, key = _self_signed(tmp)
    port = free_port()
    proc = Proc([binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(tmp / "data"),
                 "--silent", "--skipApiVersionCheck", "--disableTelemetry", "--loose", "--cert", cert, "--key", key,
                 "--oauth", "basic"], port, "Azurite (HTTPS, OAuth)")
    yield OAuthAzurite(f"https://127.0.0.1:{port}/{ACCOUNT}", cert)
    proc.stop()


@pytest.fixture
def managed_identity(oauth_azurite, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", oauth_azurite.ca)
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                 "AZURE_TOKEN_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    identity = ManagedIdentityEndpoint(header="identity-header-value")
    monkeypatch.setenv("IDENTITY_ENDPOINT", identity.url)
    monkeypatch.setenv("IDENTITY_HEADER", "identity-header-value")
    container = f"flows-{uuid.uuid4().hex[:12]}"
    with_key = (f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={AZURITE_KEY};"
                f"BlobEndpoint={oauth_azurite.endpoint};")
    BlobServiceClient.from_connection_string(with_key).create_container(container)
    yield identity, container
    identity.stop()


@pytest.mark.parametrize("form", ["connection string without a key", "account URL"])
def test_keyless_connection_string_uses_default_azure_credential(oauth_azurite, managed_identity, monkeypatch,
                                                                  form):
    identity, container = managed_identity
    value = (f"BlobEndpoint={oauth_azurite.endpoint};" if form == "connection string without a key"
             else oauth_azurite.endpoint)
    monkeypatch.setenv("AZ_KEYLESS", value)
    storage = Azure(container=container, connection_string_secret="AZ_KEYLESS")
    f = flow_with_tasks()
    storage.add_flow(f)
    storage.build()
    assert same_flow(from_dict(storage.serialize()).get_flow(f.name))
    assert identity.requests and "resource=https://storage.azure.com" in identity.requests[0]


def test_keyless_connection_string_refused_without_a_token(oauth_azurite, managed_identity, monkeypatch):
    """No token from the credential chain: an error saying so, naming the secret (not "wrong key")."""
    identity, container = managed_identity
    monkeypatch.setenv("IDENTITY_HEADER", "a-wrong-identity-header")
    monkeypatch.setenv("AZ_KEYLESS", f"BlobEndpoint={oauth_azurite.endpoint};")
    storage = Azure(container=container, connection_string_secret="AZ_KEYLESS")
    storage.add_flow(Flow("test"))
    with pytest.raises(AuthenticationError, match="no token from Azure's default credential chain "
                                                  r"\(DefaultAzureCredential\), used because secret AZ_KEYLESS "
                                                  "holds no key"):
        storage.build()
    assert identity.requests  # the managed identity was asked, and refused the wrong header
