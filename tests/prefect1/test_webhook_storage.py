"""Prefect 1.4.1's tests/storage/test_webhook_storage.py, ported to gitflows against real HTTP servers.

Prefect replaced ``webhook._method_to_function`` with mocks returning canned responses; here every
request goes to the suite's webhook server on 127.0.0.1 (it stores what is POSTed/PUT and returns it
on GET, and checks a bearer token), or, for 5xx answers, to a small server below that always fails.
Prefect's ``_render_dict`` tests become tests of :func:`gitflows.blobs.webhook.fill` (same rules) and
of what the server received. ``templating_works_if_nothing_to_template`` and
``templating_works_with_embedded_json_strings`` lacked the ``test_`` prefix in Prefect (never ran);
they run here.

Deliberate differences (docs/prefect1.md, "Azure, Webhook"):
- script mode without ``flow_script_path`` (or with a missing file) fails at ``add_flow`` naming the
  flow (Prefect: at ``build()``); still a ``RuntimeError`` with Prefect's words;
- HTTP errors are gitflows errors (``AuthenticationError``, ``PathNotFoundError``, ``RemoteError`` after
  retries of 5xx) that are *also* ``requests.HTTPError`` (``requests.ConnectionError`` with no answer);
  the filled request is not attached to them (``err.response`` is None; ``err.status_code`` is set);
- a ``Flow`` object is ``in`` a storage that holds its name (Prefect: only strings; see "Every storage");
- ``add_flow`` returns a generated key (Prefect: the flow name); the build request may use it as
  ``${GITFLOWS_KEY}``, and then one storage holds several flows (Prefect: one, replaced by the next);
- HTTP method names are accepted in any case (Prefect: upper case only).

Not ported: none.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from gitflows import Flow, task
from gitflows.blobs.webhook import fill
from gitflows.errors import AuthenticationError, PathNotFoundError, RemoteError
from gitflows.storage import from_dict
from gitflows.storage.webhook import Webhook
from gitflows.utilities.storage import flow_from_bytes_pickle
from tests.blobs.conftest import fast_retries  # noqa: F401
from tests.servers.blob_servers import WebhookServer
from tests.servers.fixtures import free_port

TOKEN = "webhook-bearer-token-4711"


@task
def forty_two():
    return 42


@pytest.fixture
def sample_flow():
    with Flow("test-flow") as flow:
        forty_two()

    return flow


@pytest.fixture
def server(monkeypatch):
    server = WebhookServer(token=TOKEN)
    monkeypatch.setenv("HOOK_URL", server.url)
    monkeypatch.setenv("HOOK_TOKEN", TOKEN)
    yield server
    server.stop()


def make(build_url="${HOOK_URL}/files", get_url="${HOOK_URL}/files", build="POST", get="GET", **kwargs):
    headers = {"Authorization": "Bearer ${HOOK_TOKEN}"}
    build_kwargs = kwargs.pop("build_request_kwargs", {"url": build_url, "headers": headers})
    return Webhook(
        build_request_kwargs=build_kwargs,
        build_request_http_method=build,
        get_flow_request_kwargs={"url": get_url, "headers": headers},
        get_flow_request_http_method=get,
        **kwargs,
    )


class FailingServer:
    """Answers every request with one HTTP status, counting the requests."""

    def __init__(self, status: int) -> None:
        self.count = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _fail(self) -> None:
                outer.count += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = b'{"error": "internal"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = _fail

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_create_webhook_storage():
    build_request_kwargs = {"url": "http://127.0.0.1:9/2/files/upload"}
    get_flow_request_kwargs = {"url": "http://127.0.0.1:9/2/files/download"}
    storage = Webhook(
        build_request_kwargs=build_request_kwargs,
        build_request_http_method="PATCH",
        get_flow_request_kwargs=get_flow_request_kwargs,
        get_flow_request_http_method="GET",
    )
    assert storage
    assert storage.logger
    assert storage.build_request_kwargs == build_request_kwargs
    assert storage.build_request_http_method == "PATCH"
    assert storage.get_flow_request_kwargs == get_flow_request_kwargs
    assert storage.get_flow_request_http_method == "GET"
    assert storage.secrets == []
    assert storage.stored_as_script is False
    assert storage.flow_script_path is None
    assert storage._build_responses is None


def test_constructor_arguments_are_prefects():
    """Prefect 1.4.1's arguments, in its order and with its defaults."""
    import inspect

    params = list(inspect.signature(Webhook).parameters.values())
    empty = inspect.Parameter.empty
    assert [(p.name, p.default) for p in params[:6]] == [
        ("build_request_kwargs", empty), ("build_request_http_method", empty), ("get_flow_request_kwargs", empty),
        ("get_flow_request_http_method", empty), ("stored_as_script", False), ("flow_script_path", None)]
    assert params[-1].kind is inspect.Parameter.VAR_KEYWORD
    storage = Webhook({"url": "u"}, "PUT", {"url": "v"}, "GET", True, "flow.py", secrets=["S"])
    assert (storage.stored_as_script, storage.flow_script_path, storage.secrets) == (True, "flow.py", ["S"])


def test_all_valid_http_verb_combinations_work():
    possible_verbs = ["GET", "PATCH", "POST", "PUT"]
    for build_verb in possible_verbs:
        for get_verb in possible_verbs:
            storage = Webhook(
                build_request_kwargs={"url": "whatever"},
                build_request_http_method=build_verb,
                get_flow_request_kwargs={"url": "whatever"},
                get_flow_request_http_method=get_verb,
            )
            assert storage.build_request_http_method == build_verb
            assert storage.get_flow_request_http_method == get_verb


def test_http_methods_in_lower_case_are_accepted(server, sample_flow):
    """Deliberate difference: Prefect refused "put"; gitflows sends PUT."""
    storage = make(build="put", get="get")
    storage.add_flow(sample_flow)
    storage.build()
    assert [r[0] for r in server.requests] == ["PUT"]
    assert storage.get_flow(sample_flow.name).name == "test-flow"


def test_webhook_fails_for_bad_build_request_http_method(caplog):
    with pytest.raises(RuntimeError, match="HTTP method 'PASTA' not recognized") as err:
        Webhook(
            build_request_kwargs={"url": "http://127.0.0.1:9/2/files"},
            build_request_http_method="PASTA",
            get_flow_request_kwargs={"url": "http://127.0.0.1:9/2/files"},
            get_flow_request_http_method="POST",
        )
    assert "build_request_http_method" in str(err.value) and "GET, PATCH, POST, PUT" in str(err.value)
    assert "HTTP method 'PASTA' not recognized" in caplog.text  # logged as critical, as Prefect


def test_webhook_fails_for_bad_get_flow_request_http_method():
    for method in ("BET", "DELETE"):
        with pytest.raises(RuntimeError, match=f"HTTP method '{method}' not recognized.*get_flow_request_http_method"):
            Webhook(
                build_request_kwargs={"url": "http://127.0.0.1:9/2/files"},
                build_request_http_method="POST",
                get_flow_request_kwargs={"url": "http://127.0.0.1:9/2/files"},
                get_flow_request_http_method=method,
            )


def test_add_flow_and_contains_work_as_expected(sample_flow):
    webhook = make()
    assert sample_flow.name not in webhook
    out = webhook.add_flow(sample_flow)
    assert isinstance(out, str)
    assert sample_flow.name in webhook
    assert str(uuid.uuid4()) not in webhook

    # deliberate difference: Prefect returned False for anything but a string
    assert sample_flow in webhook
    assert 42 not in webhook


def test_add_flow_replaces_the_flow_as_prefect_did(server):
    """One flow per Webhook storage (Prefect 1), unless the build request uses ${GITFLOWS_KEY}."""
    webhook = make()
    webhook.add_flow(Flow("first"))
    webhook.add_flow(Flow("second"))
    webhook.add_flow(Flow("second"))  # the same name again: replaced, no name conflict (Prefect)
    assert list(webhook.flows) == ["second"]
    webhook.build()
    assert len(server.requests) == 1
    assert webhook.get_flow().name == "second"

    keyed = make(build_url="${HOOK_URL}/files/${GITFLOWS_KEY}", get_url="${HOOK_URL}/files/${GITFLOWS_KEY}")
    keyed.add_flow(Flow("first"))
    keyed.add_flow(Flow("second"))
    keyed.build()
    rebuilt = from_dict(keyed.serialize())
    assert rebuilt.get_flow("first").name == "first" and rebuilt.get_flow("second").name == "second"


def test_webhook_build_works_with_no_arguments(server, sample_flow):
    webhook = make()
    webhook.add_flow(sample_flow)

    res = webhook.build()
    assert isinstance(res, Webhook)
    assert flow_from_bytes_pickle(server.objects["/files"]).name == "test-flow"

    # Prefect's documented way to read the upload's answer
    assert webhook._build_responses[sample_flow.name].json() == {"stored": "/files",
                                                                 "size": len(server.objects["/files"])}
    assert webhook.build_responses[sample_flow.name]["stored"] == "/files"

    res = webhook.get_flow(sample_flow.name)
    assert isinstance(res, Flow)
    assert res.run().results["forty_two"] == 42
    assert [(r[0], r[1]) for r in server.requests] == [("POST", "/files"), ("GET", "/files")]


def test_webhook_raises_warning_if_data_in_build_request_kwargs(server, sample_flow, caplog):
    webhook = make(build_request_kwargs={"url": "${HOOK_URL}/files", "data": b"not the flow",
                                         "headers": {"Authorization": "Bearer ${HOOK_TOKEN}"}})
    webhook.add_flow(sample_flow)

    with pytest.warns(
        RuntimeWarning, match="flow content and should not be set directly"
    ):
        res = webhook.build()
    assert isinstance(res, Webhook)
    assert "'data' found in build_request_kwargs" in caplog.text
    assert flow_from_bytes_pickle(server.objects["/files"]).name == "test-flow"


def test_webhook_raises_error_on_build_failure(server, sample_flow, monkeypatch, caplog):
    """Prefect: ``requests.HTTPError`` from ``raise_for_status()`` (a mocked 404). gitflows: an error that is both;
    here the server refuses a wrong token (401)."""
    caplog.set_level("DEBUG")
    monkeypatch.setenv("HOOK_TOKEN", "wrong-token-value-0815")
    webhook = make()
    webhook.add_flow(sample_flow)

    with pytest.raises(requests.HTTPError, match="authentication failed .HTTP 401") as err:
        webhook.build()
    assert isinstance(err.value, AuthenticationError)
    assert err.value.status_code == 401 and err.value.response is None
    assert "POST http://127.0.0.1" in str(err.value) or "POST ***" in str(err.value)
    assert "wrong-token-value-0815" not in str(err.value) + repr(err.value) + caplog.text
    assert server.objects == {}


def test_webhook_raises_error_on_get_flow_failure(sample_flow):
    failing = FailingServer(500)
    try:
        webhook = Webhook(
            build_request_kwargs={"url": failing.url + "/files"},
            build_request_http_method="POST",
            get_flow_request_kwargs={"url": failing.url + "/files"},
            get_flow_request_http_method="GET",
        )
        webhook.add_flow(sample_flow)

        with pytest.raises(requests.HTTPError, match="server kept failing after 4 attempts .HTTP 500") as err:
            webhook.get_flow(sample_flow.name)
        assert isinstance(err.value, RemoteError) and isinstance(err.value, RuntimeError)
        assert err.value.status_code == 500
        assert failing.count == 4  # retried: 5xx may be transient (Prefect did not retry)
    finally:
        failing.stop()


def test_get_flow_of_a_missing_object_is_an_http_error_and_not_found(server, sample_flow):
    webhook = make(get_url="${HOOK_URL}/nothing-here")
    webhook.add_flow(sample_flow)
    webhook.build()
    with pytest.raises(requests.HTTPError, match="not found .HTTP 404") as err:
        webhook.get_flow(sample_flow.name)
    assert isinstance(err.value, PathNotFoundError)


def test_unreachable_endpoint_is_a_connection_error(sample_flow):
    webhook = Webhook({"url": f"http://127.0.0.1:{free_port()}/files"}, "POST",
                      {"url": f"http://127.0.0.1:{free_port()}/files"}, "GET")
    webhook.add_flow(sample_flow)
    with pytest.raises(requests.ConnectionError, match="no answer") as err:
        webhook.build()
    assert isinstance(err.value, RemoteError)


def test_a_silent_server_times_out(sample_flow):
    """Deliberate difference: requests have a timeout (30 s unless the arguments set one; Prefect: none)."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/files"
        webhook = Webhook({"url": url, "timeout": 0.2}, "POST", {"url": url}, "GET")
        webhook.add_flow(sample_flow)
        with pytest.raises(requests.ConnectionError, match="no answer.*ReadTimeout") as err:
            webhook.build()
        assert isinstance(err.value, RemoteError)
    finally:
        silent.close()


def test_render_dict_gets_env_variables(server, monkeypatch, sample_flow):
    some_cred = str(uuid.uuid4())
    another_secret = str(uuid.uuid4())
    monkeypatch.setenv("SOME_CRED", some_cred)
    monkeypatch.delenv("ANOTHER_SECRET", raising=False)
    build_request_kwargs = {
        "url": "${HOOK_URL}/files?key=${ANOTHER_SECRET}",
        "headers": {
            "Authorization": "Bearer ${HOOK_TOKEN}",
            "X-Api-Key": "${SOME_CRED}",
        },
    }
    webhook = make(build_request_kwargs=build_request_kwargs)

    # set a local secret (gitflows: the secrets file)
    secrets_file = os.environ["GITFLOWS_SECRETS_FILE"]
    with open(secrets_file, "w") as fh:
        fh.write(f'ANOTHER_SECRET = "{another_secret}"\n')
    os.chmod(secrets_file, 0o600)

    new_kwargs = fill(webhook.build_request_kwargs)
    webhook.add_flow(sample_flow)
    webhook.build()

    # rendering should not have side effects
    assert webhook.build_request_kwargs == {
        "url": "${HOOK_URL}/files?key=${ANOTHER_SECRET}",
        "headers": {"Authorization": "Bearer ${HOOK_TOKEN}", "X-Api-Key": "${SOME_CRED}"},
    }
    assert webhook.serialize()["build_request_kwargs"] == webhook.build_request_kwargs

    # env variables and secrets should have been filled in
    assert new_kwargs["headers"]["X-Api-Key"] == some_cred
    assert server.requests == [("POST", f"/files?key={another_secret}", f"Bearer {TOKEN}")]
    assert some_cred not in repr(webhook) + json.dumps(webhook.serialize())


def test_filled_values_never_uploaded_with_the_flow(server, monkeypatch, sample_flow):
    """``flow.storage = Webhook(...)`` is pickled with the flow: not with responses whose URLs hold filled values."""
    monkeypatch.setenv("QUERY_SECRET", "query-secret-value-31337")
    webhook = make(build_url="${HOOK_URL}/files?key=${QUERY_SECRET}")
    sample_flow.storage = webhook
    webhook.add_flow(sample_flow)
    webhook.build()
    assert webhook._build_responses[sample_flow.name].status_code == 201
    webhook.build()  # the second upload pickles the storage after a build
    assert b"query-secret-value-31337" not in server.objects["/files"]
    assert webhook.get_flow().storage.build_request_kwargs["url"] == "${HOOK_URL}/files?key=${QUERY_SECRET}"


def test_render_dict_raises_expected_exception_on_missing_env_var(server, monkeypatch, sample_flow):
    monkeypatch.delenv("SOME_CRED", raising=False)
    webhook = make(build_request_kwargs={"url": "${HOOK_URL}/files", "headers": {"X-Api-Key": "Token ${SOME_CRED}"}})
    webhook.add_flow(sample_flow)

    with pytest.raises(RuntimeError, match="SOME_CRED"):
        webhook.build()
    assert server.requests == []  # nothing sent


def test_render_dict_raises_expected_exception_on_missing_secret(monkeypatch):
    monkeypatch.delenv("ANOTHER_SECRET", raising=False)
    webhook = Webhook(
        build_request_kwargs={
            "url": "http://127.0.0.1:9/2/files?key=${ANOTHER_SECRET}"
        },
        build_request_http_method="POST",
        get_flow_request_kwargs={"url": "http://127.0.0.1:9/2/files"},
        get_flow_request_http_method="GET",
    )

    with pytest.raises(
        RuntimeError, match="does not refer to an environment variable or"
    ):
        fill(webhook.build_request_kwargs)


def test_templating_works_with_env_variable_top_level(monkeypatch):
    monkeypatch.setenv("JAVA_HOME", "abc")
    x = {"a": "coffee_place: ${JAVA_HOME}"}
    out = fill(x)
    assert out == {"a": "coffee_place: abc"}
    assert x == {"a": "coffee_place: ${JAVA_HOME}"}


def test_templating_works_with_env_variable_recursively(monkeypatch):
    monkeypatch.setenv("USER", "leia")
    x = {"a": {"b": {"c": "Bearer: ${USER}"}}}
    out = fill(x)
    assert out == {"a": {"b": {"c": "Bearer: leia"}}}
    assert x == {"a": {"b": {"c": "Bearer: ${USER}"}}}


def test_templating_works_if_nothing_to_template():
    x = {"thing": 4, "stuff": [5, 6, 7], "big": {"if": True}}
    out = fill(x)
    assert out == x
    assert x == {"thing": 4, "stuff": [5, 6, 7], "big": {"if": True}}


def test_templating_works_with_embedded_json_strings():
    x = {"headers": {"dropbox-args": '{"USER"}'}}
    out = fill(x)
    assert out == x


def test_webhook_works_with_file_storage(server, sample_flow, tmp_path):
    script_file = tmp_path / f"{uuid.uuid4()}.py"
    script_contents = """from gitflows import Flow\nf=Flow('test-flow')"""
    script_file.write_text(script_contents)

    webhook = make(stored_as_script=True, flow_script_path=str(script_file))
    webhook.add_flow(sample_flow)

    res = webhook.build()
    assert isinstance(res, Webhook)
    assert server.objects["/files"] == script_contents.encode("utf-8")  # exactly the script, nothing else

    res = webhook.get_flow(sample_flow.name)
    assert isinstance(res, Flow)
    assert res.name == "test-flow"


def test_webhook_throws_informative_error_if_flow_script_path_not_set(server, sample_flow, caplog):
    """Deliberate difference: the error comes at ``add_flow`` (Prefect: at ``build()``), naming the flow."""
    webhook = make(stored_as_script=True)

    error_msg = "flow_script_path must be provided if stored_as_script=True"
    with pytest.raises(RuntimeError, match=error_msg) as err:
        webhook.add_flow(sample_flow)
    assert "flow 'test-flow'" in str(err.value) and "flow_script_path=" in str(err.value)
    assert error_msg in caplog.text
    assert sample_flow.name not in webhook
    webhook.build()  # nothing added: nothing sent, no other file
    assert server.requests == []


def test_webhook_throws_informative_error_if_flow_script_file_does_not_exist(sample_flow):
    """Deliberate difference: the error comes at ``add_flow`` (Prefect: at ``build()``), naming the flow."""
    nonexistent_file = f"{uuid.uuid4()}.py"
    webhook = make(stored_as_script=True, flow_script_path=nonexistent_file)

    error_msg = "passed to flow_script_path does not exist"
    with pytest.raises(RuntimeError, match=error_msg) as err:
        webhook.add_flow(sample_flow)
    assert f"file '{nonexistent_file}'" in str(err.value) and "flow 'test-flow'" in str(err.value)
