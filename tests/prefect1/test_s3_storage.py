"""Prefect 1.4.1's tests/storage/test_s3_storage.py, ported to gitflows against a real moto server.

Prefect mocked boto3; here every flow really goes to a bucket of moto in server mode on 127.0.0.1,
and credentials are checked by a second moto that enforces IAM authentication (signatures, access
key ids, session tokens of assumed roles), so a wrong key is refused by the server itself.

``test_get_flow_s3_download_error`` mocked a ``Body`` whose ``read()`` raised; here a proxy in front of
moto cuts the connection in the middle of the object's body (what a failing download really looks
like). Deliberate difference: Prefect let the read error through; gitflows retries the download
and, when it keeps failing, raises ``RemoteError`` (a ``RuntimeError``) naming the bucket and key.

Not ported:
- ``clear_boto3_cache`` (fixture): Prefect's client cache (``prefect.utilities.aws._CLIENT_CACHE``) is
  an internal; gitflows makes one client per store.
- ``test_s3_storage_init_properly_result_with_boto3_args``: checks that Prefect's ``S3Result`` (a task
  result backend) got the client options; gitflows has no task result layer (``result=`` is kept as
  given, see "Every storage" in docs/prefect1.md).
"""

from __future__ import annotations

import http.client
import json
import pickle
import re
import textwrap
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from gitflows import Flow, task
from gitflows.errors import AuthenticationError, BucketNotFoundError, ConfigurationError, PathNotFoundError, RemoteError
from gitflows.storage import S3, from_dict
from gitflows.utilities.storage import flow_from_bytes_pickle, flow_to_bytes_pickle
from tests.blobs.conftest import moto  # noqa: F401
from tests.servers.blob_servers import Proc, _bin
from tests.servers.fixtures import free_port

REGION = "us-east-1"
#: requests moto serves before it starts checking credentials: the IAM and bucket set-up below
SETUP_REQUESTS = 6
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
TRUST_ALL = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})


@task
def double(x):
    return x * 2


@dataclass
class AuthMoto:
    """moto enforcing IAM authentication, with one user (all permissions) and one role it may assume."""

    endpoint: str
    key_id: str
    secret: str
    bucket: str

    @property
    def options(self) -> dict:
        return {"endpoint_url": self.endpoint, "region_name": REGION}

    def client(self, service: str = "s3"):
        return boto3.client(service, aws_access_key_id=self.key_id, aws_secret_access_key=self.secret,
                            **self.options)

    def temporary(self) -> dict:
        """Prefect's AWS_CREDENTIALS dict for a session of the role (ACCESS_KEY, SECRET_ACCESS_KEY, SESSION_TOKEN)."""
        creds = self.client("sts").assume_role(RoleArn="arn:aws:iam::123456789012:role/flows",
                                               RoleSessionName="gitflows-test")["Credentials"]
        return {"ACCESS_KEY": creds["AccessKeyId"], "SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                "SESSION_TOKEN": creds["SessionToken"]}

    def objects(self) -> dict[str, bytes]:
        client = self.client()
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=self.bucket).get("Contents", [])]
        return {k: client.get_object(Bucket=self.bucket, Key=k)["Body"].read() for k in keys}


@pytest.fixture(scope="session")
def aws_auth():
    port = free_port()
    proc = Proc([_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)], port, "moto server (IAM auth)",
                {"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)})
    anonymous = {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": REGION,
                 "aws_access_key_id": "AKIAANONYMOUSSETUP00", "aws_secret_access_key": "setup"}
    iam = boto3.client("iam", **anonymous)
    iam.create_user(UserName="flows")  # 1
    iam.put_user_policy(UserName="flows", PolicyName="all", PolicyDocument=ALLOW_ALL)  # 2
    key = iam.create_access_key(UserName="flows")["AccessKey"]  # 3
    iam.create_role(RoleName="flows", AssumeRolePolicyDocument=TRUST_ALL)  # 4
    iam.put_role_policy(RoleName="flows", PolicyName="all", PolicyDocument=ALLOW_ALL)  # 5
    boto3.client("s3", **anonymous).create_bucket(Bucket="flows-auth")  # 6: from here on, credentials are checked
    yield AuthMoto(anonymous["endpoint_url"], key["AccessKeyId"], key["SecretAccessKey"], "flows-auth")
    proc.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    """Nothing ambient: no AWS keys, profiles or instance metadata (which would leave 127.0.0.1)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CREDENTIALS", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # a storage without endpoint_url stays local
    monkeypatch.setenv("GITFLOWS_RETRY_BACKOFF", "0.01")
    boto3.DEFAULT_SESSION = None  # it caches the credentials it found: start from the environment above
    yield
    boto3.DEFAULT_SESSION = None


@pytest.fixture
def bucket(moto, monkeypatch):  # noqa: F811
    """A fresh bucket on the plain moto server; the default chain gets placeholder keys from the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    name = f"flows-{uuid.uuid4().hex[:12]}"
    options = {"endpoint_url": f"http://127.0.0.1:{moto.port}", "region_name": REGION}
    client = boto3.client("s3", **options)
    client.create_bucket(Bucket=name)
    return Bucket(name, options, client)


@dataclass
class Bucket:
    name: str
    options: dict
    client: object

    def keys(self) -> list[str]:
        return sorted(o["Key"] for o in self.client.list_objects_v2(Bucket=self.name).get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data)

    def storage(self, **kw) -> S3:
        return S3(bucket=self.name, client_options=self.options, **kw)


def generated_key_pattern(flow_slug: str) -> str:
    """Prefect 1's key: slugify(flow name) / slugify(pendulum.now("utc").isoformat())."""
    return rf"{flow_slug}/\d{{4}}-\d{{2}}-\d{{2}}t\d{{2}}-\d{{2}}-\d{{2}}(-\d{{6}})?-00-00"


def test_create_s3_storage():
    storage = S3(bucket="test")
    assert storage
    assert storage.logger


def test_create_s3_storage_init_args():
    storage = S3(
        bucket="bucket",
        key="key",
        client_options={"endpoint_url": "http://some-endpoint", "use_ssl": False},
        secrets=["auth"],
    )
    assert storage
    assert storage.flows == dict()
    assert storage.bucket == "bucket"
    assert storage.key == "key"
    assert storage.client_options == {
        "endpoint_url": "http://some-endpoint",
        "use_ssl": False,
    }
    assert storage.secrets == ["auth"]


def test_serialize_s3_storage():
    storage = S3(
        bucket="bucket",
        client_options={"endpoint_url": "http://some-endpoint", "use_ssl": False},
    )
    serialized_storage = storage.serialize()

    assert serialized_storage["type"] == "S3"
    assert serialized_storage["bucket"] == "bucket"
    assert serialized_storage["client_options"] == {
        "endpoint_url": "http://some-endpoint",
        "use_ssl": False,
    }


def test_boto3_client_property(aws_auth, monkeypatch):
    """Prefect: ``prefect.context.secrets["AWS_CREDENTIALS"]`` (ACCESS_KEY, SECRET_ACCESS_KEY, SESSION_TOKEN)
    reached ``boto3.client`` next to the client options. Here the secret is named ``AWS_CREDENTIALS`` (an
    environment variable) and moto checks the key, the signature and the session token it signed with."""
    monkeypatch.setenv("AWS_CREDENTIALS", json.dumps(aws_auth.temporary()))
    storage = S3(bucket=aws_auth.bucket, key="with-session-token", client_options=aws_auth.options)
    storage.add_flow(Flow("test"))
    storage.build()
    assert flow_from_bytes_pickle(aws_auth.objects()["with-session-token"]).name == "test"
    assert storage.get_flow("test").name == "test"
    client = storage._boto3_client  # Prefect's property: a client signed with those credentials
    assert client.head_object(Bucket=aws_auth.bucket, Key="with-session-token")["ContentLength"] > 0

    wrong = dict(aws_auth.temporary(), SESSION_TOKEN="not-the-session-token")
    monkeypatch.setenv("AWS_CREDENTIALS", json.dumps(wrong))
    with pytest.raises(AuthenticationError, match="InvalidToken|token"):
        storage.get_flow("test")


def test_aws_credentials_secret_is_used_on_the_machine_that_runs_the_flow(aws_auth, monkeypatch, caplog):
    """A serialized S3 storage carries no credentials; where it is loaded, AWS_CREDENTIALS supplies them."""
    caplog.set_level("DEBUG")
    secret = {"ACCESS_KEY": aws_auth.key_id, "SECRET_ACCESS_KEY": aws_auth.secret}
    monkeypatch.setenv("AWS_CREDENTIALS", json.dumps(secret))
    storage = S3(bucket=aws_auth.bucket, client_options=aws_auth.options)
    with Flow("secret-flow") as flow:
        double(21)
    key = storage.add_flow(flow)
    storage.build()
    assert key in aws_auth.objects()
    data = json.loads(json.dumps(storage.serialize()))
    assert from_dict(data).get_flow("secret-flow").run().results["double"] == 42

    monkeypatch.setenv("AWS_CREDENTIALS", json.dumps(dict(secret, SECRET_ACCESS_KEY="wrong" + aws_auth.secret)))
    with pytest.raises(AuthenticationError, match="SignatureDoesNotMatch") as err:
        from_dict(data).get_flow("secret-flow")
    assert aws_auth.secret not in str(err.value) + caplog.text

    monkeypatch.delenv("AWS_CREDENTIALS")  # the default chain: nothing configured here
    with pytest.raises(AuthenticationError, match="no AWS credentials found"):
        from_dict(data).get_flow("secret-flow")

    monkeypatch.setenv("AWS_CREDENTIALS", "not json")
    with pytest.raises(ConfigurationError, match="AWS_CREDENTIALS must be JSON"):
        from_dict(data).get_flow("secret-flow")
    monkeypatch.setenv("AWS_CREDENTIALS", json.dumps({"ACCESS_KEY": aws_auth.key_id}))
    with pytest.raises(ConfigurationError, match="AWS_CREDENTIALS lacks SECRET_ACCESS_KEY"):
        from_dict(data).get_flow("secret-flow")


def test_credentials_in_client_options_are_used_never_kept(aws_auth, caplog, tmp_path):
    """Deliberate difference: Prefect serialized client_options with the keys in them; gitflows uses the keys for
    the client and drops them from client_options, serialize(), repr(), logs, errors and pickles."""
    caplog.set_level("DEBUG")
    options = dict(aws_auth.options, aws_access_key_id=aws_auth.key_id, aws_secret_access_key=aws_auth.secret)
    storage = S3(bucket=aws_auth.bucket, key="explicit", client_options=options)
    flow = Flow("explicit")
    flow.storage = storage
    storage.add_flow(flow)
    storage.build()
    assert flow_from_bytes_pickle(aws_auth.objects()["explicit"]).name == "explicit"
    assert storage.get_flow().name == "explicit"

    assert storage.client_options == aws_auth.options
    shown = json.dumps(storage.serialize()) + repr(storage) + caplog.text
    assert aws_auth.secret not in shown and aws_auth.key_id not in shown
    assert aws_auth.secret.encode() not in pickle.dumps(storage) + aws_auth.objects()["explicit"]

    wrong = S3(bucket=aws_auth.bucket, key="explicit",
               client_options=dict(options, aws_secret_access_key="wrong-secret-value"))
    with pytest.raises(AuthenticationError, match="SignatureDoesNotMatch") as err:
        wrong.get_flow()
    assert "wrong-secret-value" not in str(err.value) + repr(wrong) + caplog.text

    with pytest.raises(ConfigurationError, match="missing aws_secret_access_key"):
        S3(bucket="b", client_options={"aws_access_key_id": aws_auth.key_id})


def test_credentials_in_client_options_win_over_the_secret(aws_auth, monkeypatch):
    """Deliberate difference: Prefect let AWS_CREDENTIALS override client_options key by key; in gitflows the
    credentials written in the storage win and the secret is used only when client_options carry none."""
    monkeypatch.setenv("AWS_CREDENTIALS", json.dumps({"ACCESS_KEY": "AKIANOTAVALIDKEY0000",
                                                      "SECRET_ACCESS_KEY": "wrong-secret"}))
    options = dict(aws_auth.options, aws_access_key_id=aws_auth.key_id, aws_secret_access_key=aws_auth.secret)
    storage = S3(bucket=aws_auth.bucket, key="explicit-wins", client_options=options)
    storage.add_flow(Flow("explicit-wins"))
    storage.build()
    assert "explicit-wins" in aws_auth.objects()
    with pytest.raises(AuthenticationError, match="InvalidAccessKeyId"):
        S3(bucket=aws_auth.bucket, key="explicit-wins", client_options=aws_auth.options).get_flow()


def test_profile_name_in_client_options(aws_auth, monkeypatch, tmp_path):
    """Prefect's get_boto_client made a boto3 Session for ``profile_name``; so does gitflows, and the profile's
    keys are what the server sees. ``use_session`` (deprecated in Prefect 0.14.9) is dropped with a warning."""
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(f"[flows]\naws_access_key_id = {aws_auth.key_id}\n"
                           f"aws_secret_access_key = {aws_auth.secret}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    with pytest.warns(UserWarning, match="use_session"):
        storage = S3(bucket=aws_auth.bucket, key="from-profile",
                     client_options=dict(aws_auth.options, profile_name="flows", use_session=True))
    assert storage.serialize()["client_options"] == dict(aws_auth.options, profile_name="flows")
    storage.add_flow(Flow("profiled"))
    storage.build()
    assert flow_from_bytes_pickle(aws_auth.objects()["from-profile"]).name == "profiled"

    unknown = S3(bucket=aws_auth.bucket, key="from-profile", client_options=dict(aws_auth.options, profile_name="nope"))
    with pytest.raises(ValueError, match="ProfileNotFound.*nope"):
        unknown.get_flow()


def test_add_flow_to_S3():
    storage = S3(bucket="bucket")

    f = Flow("test")
    assert f.name not in storage
    key = storage.add_flow(f)
    assert storage.flows[f.name] == key
    assert f.name in storage
    assert re.fullmatch(generated_key_pattern("test"), key)


def test_add_multiple_flows_to_S3():
    storage = S3(bucket="bucket")

    flows = [Flow("f"), Flow("g")]
    keys = [storage.add_flow(f) for f in flows]
    for flow, key in zip(flows, keys):
        assert storage.flows[flow.name] == key
        assert flow.name in storage


def test_generated_key_follows_prefect():
    """slugify(flow name) as python-slugify did it: accents dropped, quotes and punctuation to '-'."""
    storage = S3(bucket="bucket")
    assert re.fullmatch(generated_key_pattern("cafe-s-etl-1000-rows"), storage.add_flow(Flow("Café's ETL: 1,000 rows!")))


@pytest.mark.parametrize("key", ["mykey", None])
def test_upload_flow_to_s3(bucket, key):
    storage = bucket.storage(key=key)

    f = Flow("test")

    key_used = storage.add_flow(f)
    if key is not None:
        assert key_used == key

    assert storage.build() is storage

    assert bucket.keys() == [key_used]
    new_flow = flow_from_bytes_pickle(bucket.read(key_used))
    assert new_flow.name == "test"

    state = new_flow.run()
    assert state.is_successful()


def test_build_no_upload_if_file_and_no_script(bucket):
    storage = bucket.storage(stored_as_script=True)

    with pytest.raises(ValueError, match="local_script_path= .* or key="):
        storage.build()

    storage = bucket.storage(stored_as_script=True, key="flow.py")
    storage.add_flow(Flow("test"))
    storage.build()
    assert bucket.keys() == []


def test_build_no_upload_without_local_script_path_names_the_flows(bucket):
    """No guess: without local_script_path and key, the error names the flow and says what to pass."""
    with Flow("nightly-etl") as flow:
        double(1)  # a task defined in this file, which is on disk: still not a script to upload
    storage = bucket.storage(stored_as_script=True)
    storage.add_flow(flow)
    with pytest.raises(ValueError, match="'nightly-etl'.*needs local_script_path="):
        storage.build()
    assert bucket.keys() == []
    with_key = bucket.storage(stored_as_script=True, key="placed/by/me.py")
    with_key.add_flow(flow)
    assert with_key.build() is with_key
    assert bucket.keys() == []  # Prefect: the script is expected at key, put there by the user


def test_build_script_upload(bucket, tmp_path):
    local = tmp_path / "local.py"
    local.write_text("from gitflows import Flow\nflow = Flow('test')\n")
    storage = bucket.storage(stored_as_script=True, local_script_path=str(local), key="key")

    f = Flow("test")
    storage.add_flow(f)
    assert f.name in storage

    storage.build()
    assert bucket.keys() == ["key"]
    assert bucket.read("key") == local.read_bytes()

    # Prefect: the boto3 ClientError went through. gitflows: an error naming the bucket and key.
    broken = S3(bucket="no-such-bucket-here", stored_as_script=True, local_script_path=str(local), key="key",
                client_options=bucket.options)
    broken.add_flow(f)
    with pytest.raises(BucketNotFoundError, match="no-such-bucket-here.*'key'.*does not exist"):
        broken.build()


def test_script_uploaded_is_the_file_named_not_where_the_tasks_are(bucket, tmp_path):
    """The flow's task comes from this test module; the file uploaded is local_script_path, under a key
    generated as Prefect did when no key is given."""
    local = tmp_path / "etl.py"
    local.write_text("from gitflows import Flow\nflow = Flow('mixed')\n")
    with Flow("mixed") as flow:
        double(2)
    storage = bucket.storage(stored_as_script=True, local_script_path=str(local))
    key = storage.add_flow(flow)
    assert re.fullmatch(generated_key_pattern("mixed"), key)
    storage.build()
    assert bucket.keys() == [key] and bucket.read(key) == local.read_bytes()
    assert storage.get_flow("mixed").name == "mixed"

    missing = bucket.storage(stored_as_script=True, local_script_path=str(tmp_path / "gone.py"), key="gone")
    missing.add_flow(flow)
    with pytest.raises(FileNotFoundError, match="gone.py.*'mixed'"):
        missing.build()


def test_upload_flow_to_s3_client_error(bucket):
    """Prefect: botocore's ClientError. gitflows: BucketNotFoundError naming the bucket."""
    storage = S3(bucket="no-such-bucket-here", client_options=bucket.options)

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f)

    with pytest.raises(BucketNotFoundError, match="S3 bucket 'no-such-bucket-here'"):
        storage.build()


def test_upload_multiple_flows_to_s3_bucket(bucket):
    storage = bucket.storage()

    f1 = Flow("test1")
    f2 = Flow("test2")
    assert storage.add_flow(f1)
    assert storage.add_flow(f2)
    assert storage.build()

    assert bucket.keys() == sorted(storage.flows.values())
    assert {flow_from_bytes_pickle(bucket.read(k)).name for k in bucket.keys()} == {"test1", "test2"}


def test_upload_options_reach_the_object(bucket):
    storage = bucket.storage(key="typed", upload_options={"ContentType": "application/x-gitflows",
                                                          "Metadata": {"team": "data"}})
    storage.add_flow(Flow("test"))
    storage.build()
    head = bucket.client.head_object(Bucket=bucket.name, Key="typed")
    assert head["ContentType"] == "application/x-gitflows" and head["Metadata"] == {"team": "data"}

    bad = bucket.storage(key="typed", upload_options={"Body": b"x"})
    bad.add_flow(Flow("test"))
    with pytest.raises(ValueError, match="upload_options Body are not upload arguments"):
        bad.build()


def test_add_flow_to_s3_already_added():
    storage = S3(bucket="bucket")

    f = Flow("test")
    assert f.name not in storage
    assert storage.add_flow(f)
    assert f.name in storage

    with pytest.raises(ValueError):
        storage.add_flow(f)


@pytest.mark.parametrize("key", ["mykey", None])
def test_get_flow_s3_pickle(bucket, key):
    f = Flow("test")
    storage = bucket.storage(key=key)
    key_used = storage.add_flow(f)

    bucket.put(key_used, flow_to_bytes_pickle(f))

    f2 = storage.get_flow(f.name)

    assert f2.name == f.name
    state = f2.run()
    assert state.is_successful()


@pytest.mark.parametrize("key", ["mykey", None])
def test_get_flow_s3_script(bucket, key):
    f = Flow("test")
    storage = bucket.storage(key=key, stored_as_script=True)
    key_used = storage.add_flow(f)

    data = textwrap.dedent(
        """
        from gitflows import Flow
        flow = Flow("test")
        """
    ).encode("utf-8")
    bucket.put(key_used, data)

    f2 = storage.get_flow(f.name)

    assert f2.name == f.name
    state = f2.run()
    assert state.is_successful()


@pytest.mark.parametrize("versioned", [True, False])
def test_get_flow_s3_logs(bucket, caplog, versioned):
    caplog.set_level("INFO")
    if versioned:
        bucket.client.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
    f = Flow("test")
    storage = bucket.storage()
    key_used = storage.add_flow(f)
    storage.build()
    head = bucket.client.head_object(Bucket=bucket.name, Key=key_used)
    version_id = head.get("VersionId") if versioned else None
    assert bool(version_id) is versioned
    caplog.clear()

    storage.get_flow(f.name)
    logs = [rec.getMessage() for rec in caplog.records if rec.name == "gitflows.storage.S3"]
    assert f"s3://{bucket.name}/{key_used}" in logs[0]
    assert (
        f"ETag: {head['ETag']}, LastModified: {head['LastModified'].isoformat()}, VersionId: {version_id}"
        in logs[1]
    )


def test_get_flow_s3_client_error(bucket):
    """Prefect: botocore's ClientError. gitflows: PathNotFoundError (a FileNotFoundError) naming the key."""
    f = Flow("test")

    storage = bucket.storage()
    key = storage.add_flow(f)

    with pytest.raises(PathNotFoundError, match=f"'{key}': no such key"):
        storage.get_flow(f.name)
    with pytest.raises(FileNotFoundError):
        storage.get_flow(f.name)


class CuttingProxy:
    """Relays requests to moto; the first ``cuts`` object downloads stop halfway through the body."""

    def __init__(self, port: int, cuts: int) -> None:
        self.cuts, self.downloads = cuts, 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                upstream.request(self.command, self.path, body=body or None, headers=dict(self.headers))
                answer = upstream.getresponse()
                data = answer.read()
                cut = self.command == "GET" and answer.status == 200 and proxy.cuts > 0
                if self.command == "GET" and answer.status == 200:
                    proxy.downloads += 1
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if cut:
                    proxy.cuts -= 1
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = _relay

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()


def test_get_flow_s3_download_error(bucket, moto):  # noqa: F811
    f = Flow("test")
    storage = bucket.storage()
    key = storage.add_flow(f)
    storage.build()

    proxy = CuttingProxy(moto.port, cuts=1)
    try:
        through = S3(bucket=bucket.name, client_options=dict(bucket.options, endpoint_url=proxy.endpoint))
        through.flows, through.digests = dict(storage.flows), dict(storage.digests)
        assert through.get_flow(f.name) == f  # the cut download was retried
        assert proxy.downloads == 2

        proxy.cuts = 100
        with pytest.raises(RemoteError, match=f"S3 bucket '{bucket.name}'.*downloading '{key}'.*kept failing") as err:
            through.get_flow(f.name)
        assert isinstance(err.value, RuntimeError)
    finally:
        proxy.stop()


def test_get_flow_s3_not_in_storage():
    """Deliberate difference ("Every storage" in docs/prefect1.md): a storage with no recorded flows loads the
    named flow from its own key, so the storage here records another flow."""
    f = Flow("test")
    storage = S3(bucket="bucket", key="mykey")
    storage.add_flow(Flow("other"))

    with pytest.raises(ValueError, match="Flow is not contained in this Storage"):
        storage.get_flow(f.name)
