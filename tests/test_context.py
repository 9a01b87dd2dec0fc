"""storage.secrets really used at run time, and the seed API ``get_env_runner(flow_location).run(env)``."""

from __future__ import annotations

import json
import textwrap

import pytest

from gitflows.agent import Agent
from gitflows.context import secrets, use_secrets
from gitflows.errors import SecretNotFoundError
from gitflows.registry import FlowVersion, open_registry
from gitflows.storage import Local, from_dict

TOKEN = "tok-3f9a7c21-very-secret"

FLOW = textwrap.dedent('''
    import os
    from gitflows import Flow, task
    import gitflows.context

    @task
    def use_token(out):
        value = gitflows.context.secrets["API_TOKEN"]
        assert os.environ["API_TOKEN"] == value
        print("calling the API with", value)        # must be masked in every captured log
        with open(out, "w") as fh:
            fh.write(json.dumps({"token": value, "extra": os.environ.get("EXTRA")}))
        return len(value)

    import json
    with Flow("uses-secret") as flow:
        use_token(os.environ["OUT_FILE"])
''')


@pytest.fixture
def script_storage(tmp_path, monkeypatch):
    path = tmp_path / "flows" / "secretive.py"
    path.parent.mkdir()
    path.write_text(FLOW)
    monkeypatch.setenv("OUT_FILE", str(tmp_path / "seen.json"))
    storage = Local(stored_as_script=True, path=str(path), secrets=["API_TOKEN"])
    storage.add_flow(__import__("gitflows").Flow("uses-secret"))
    return storage, tmp_path / "seen.json"


def test_env_runner_resolves_secrets_for_the_tasks_and_masks_them(script_storage, monkeypatch):
    storage, seen = script_storage
    monkeypatch.setenv("API_TOKEN", TOKEN)
    result = storage.get_env_runner(storage.flows["uses-secret"]).run({"EXTRA": "from-run-env"})
    assert result.is_successful(), result.error
    assert json.loads(seen.read_text()) == {"token": TOKEN, "extra": "from-run-env"}
    assert "calling the API with ***" in result.logs
    assert TOKEN not in result.logs
    # the serialized storage names the secret, never its value
    assert storage.serialize()["secrets"] == ["API_TOKEN"] and TOKEN not in json.dumps(storage.serialize())


def test_env_runner_by_name_from_a_deserialized_storage(script_storage, monkeypatch):
    storage, seen = script_storage
    monkeypatch.setenv("API_TOKEN", TOKEN)
    result = from_dict(storage.serialize()).get_env_runner("uses-secret").run({})
    assert result.is_successful(), result.error and json.loads(seen.read_text())["token"] == TOKEN


def test_a_missing_secret_fails_the_run_before_any_task_runs(script_storage, monkeypatch):
    storage, seen = script_storage
    monkeypatch.delenv("API_TOKEN", raising=False)
    result = storage.get_env_runner("uses-secret").run({})
    assert result.state == "failed"
    assert "secret 'API_TOKEN' not found" in result.error
    assert not seen.exists()


def test_env_must_be_strings(script_storage):
    storage, _ = script_storage
    with pytest.raises(TypeError, match="str -> str"):
        storage.get_env_runner("uses-secret").run({"N": 1})


def test_use_secrets_restores_environment_and_mapping(monkeypatch):
    monkeypatch.setenv("ONE_SECRET", "value-one-1234")
    monkeypatch.delenv("TWO_SECRET", raising=False)
    with pytest.raises(SecretNotFoundError):
        with use_secrets(["ONE_SECRET", "TWO_SECRET"]):
            pass
    assert dict(secrets) == {}
    with use_secrets(["ONE_SECRET"]) as mapping:
        assert mapping["ONE_SECRET"] == "value-one-1234"
        assert "value-one-1234" not in repr(mapping)
        with pytest.raises(KeyError, match="'TWO_SECRET' is not available to this run"):
            mapping["TWO_SECRET"]
    assert dict(secrets) == {}


def test_agent_run_resolves_secrets_and_stores_only_masked_logs(script_storage, monkeypatch, tmp_path):
    storage, seen = script_storage
    monkeypatch.setenv("API_TOKEN", TOKEN)
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    reg = open_registry(url)
    reg.register(FlowVersion(name="uses-secret", version=0, storage=storage.serialize(), repo=None,
                             path=storage.path, requested_ref=None, sha=None, closure=[], fingerprint="fp",
                             labels=[], state="confirmed", registered_at=0.0))
    run = reg.create_run("uses-secret")
    Agent(url, poll=0.05).run(once=True)
    done = reg.get_run(run.id)
    assert done.state == "success", done.error
    assert json.loads(seen.read_text())["token"] == TOKEN
    assert "calling the API with ***" in done.logs and TOKEN not in done.logs
