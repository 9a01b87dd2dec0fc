"""What a newcomer types, answered clearly (issue 14): registry paths as users write them, read-only
commands that never create a database, a corrupt registry file, empty listings that say why, bad
numbers refused."""

from __future__ import annotations

import os

import pytest

from gitflows.registry import open_registry, sqlite_path

from .conftest import run_cli


@pytest.mark.parametrize("written, expected", [
    ("sqlite:///srv/flows/reg.db", "/srv/flows/reg.db"),      # a file:/// style URL: absolute
    ("sqlite:////srv/flows/reg.db", "/srv/flows/reg.db"),     # SQLAlchemy's absolute form
    ("/srv/flows/reg.db", "/srv/flows/reg.db"),               # a plain absolute path
])
def test_registry_urls_are_read_as_users_write_them(written, expected):
    assert sqlite_path(written) == expected


def test_relative_registry_paths_are_relative_to_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("reg.db") == str(tmp_path / "reg.db")
    assert sqlite_path("sqlite:reg.db") == str(tmp_path / "reg.db")
    assert sqlite_path("~/reg.db") == os.path.expanduser("~/reg.db")


def test_read_only_commands_never_create_a_registry(tmp_path):
    target = tmp_path / "nothing" / "reg.db"
    env = {"GITFLOWS_REGISTRY": f"sqlite:///{str(target).lstrip('/')}"}
    flows = run_cli("flows", env=env, cwd=tmp_path)
    assert flows.returncode == 0, flows.stderr
    assert "no flows registered (no registry at" in flows.stdout
    runs = run_cli("runs", "--json", env=env, cwd=tmp_path)
    assert runs.returncode == 0 and runs.stdout.strip() == "[]"
    scheduled = run_cli("run", "etl", env=env, cwd=tmp_path)
    assert scheduled.returncode == 2 and "no registry at" in scheduled.stderr
    assert not target.exists() and not target.parent.exists()


def test_a_corrupt_registry_file_is_one_line_not_unexpected(tmp_path):
    bad = tmp_path / "reg.db"
    bad.write_bytes(b"this is not a database" * 100)
    result = run_cli("flows", env={"GITFLOWS_REGISTRY": str(bad)})
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be used as a SQLite database" in lines[0] and str(bad) in lines[0]


def test_runs_of_an_unknown_flow_say_so(tmp_path):
    url = str(tmp_path / "reg.db")
    open_registry(url).runs()  # an empty registry
    result = run_cli("runs", "nope", env={"GITFLOWS_REGISTRY": url})
    assert result.returncode == 0
    assert "flow 'nope' is not registered" in result.stdout


def test_cache_prune_refuses_a_negative_age(tmp_path):
    result = run_cli("cache", "prune", "--older-than", "-5")
    assert result.returncode == 2
    assert "-5" in result.stderr and "0" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bare_gitflows_shows_its_commands_and_succeeds():
    result = run_cli()
    assert result.returncode == 0, result.stderr
    for command in ("check", "register", "run", "agent", "runs", "flows", "diff", "hooks", "cache"):
        assert command in result.stdout


def test_register_options_are_not_one_letter_apart():
    result = run_cli("register", "--help")
    assert "--confirm-pending" in result.stdout and "--pushed" in result.stdout
    assert "--confirmed" not in result.stdout
    typo = run_cli("register", "--confirm")
    assert typo.returncode == 2 and "--confirm-pending" in typo.stderr  # click suggests the real name


def test_run_takes_its_flow_version_by_its_own_name():
    result = run_cli("run", "--help")
    assert "--flow-version N" in result.stdout
    assert run_cli("--version").stdout.startswith("gitflows")  # the program's version stays --version


def _registered(tmp_path, labels=()):
    from gitflows.registry import FlowVersion

    url = str(tmp_path / "reg.db")
    reg = open_registry(url)
    script = tmp_path / "etl.py"
    script.write_text("from gitflows import Flow, task\n\n@task\ndef t():\n    return 1\n\n"
                      "with Flow('etl') as flow:\n    t()\n")
    from gitflows.storage import Local

    storage = Local(stored_as_script=True, path=str(script))
    reg.register(FlowVersion(name="etl", version=0, storage=storage.serialize(), repo=None, path=str(script),
                             requested_ref=None, sha=None, closure=[], fingerprint="fp", labels=list(labels),
                             state="confirmed", registered_at=0.0))
    return url, reg


def test_a_run_that_waits_says_what_for(tmp_path):
    url, reg = _registered(tmp_path, labels=["gpu"])
    run = reg.create_run("etl")
    listed = run_cli("runs", env={"GITFLOWS_REGISTRY": url})
    assert f"{run.id}\tetl\tv1\tscheduled" in listed.stdout and "waits for an agent with labels gpu" in listed.stdout
    from gitflows.agent import Agent

    agent = Agent(url, poll=0.05, echo=True)
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert agent.run(once=True) == []
    assert f"run {run.id}: etl v1 needs labels gpu (this agent has: none); left for an agent" in out.getvalue()
    assert reg.get_run(run.id).state == "scheduled"


def test_run_wait_with_no_agent_says_so_instead_of_waiting_silently(tmp_path):
    url, _ = _registered(tmp_path)
    result = run_cli("run", "etl", "--wait", "--timeout", "7", env={"GITFLOWS_REGISTRY": url})
    assert result.returncode == 1
    assert "still scheduled after 5s: it waits for an agent; start one (gitflows agent)" in result.stderr
    assert "still scheduled after 7s" in result.stderr


def test_a_missing_version_lists_the_flows_versions(tmp_path):
    url, reg = _registered(tmp_path)
    result = run_cli("run", "etl", "--flow-version", "9", env={"GITFLOWS_REGISTRY": url})
    assert result.returncode == 2
    assert "flow 'etl' has no version 9" in result.stderr and "its versions: 1" in result.stderr


def test_docker_without_a_daemon_is_one_clear_error(tmp_path):
    from gitflows import Flow
    from gitflows.errors import RemoteError
    from gitflows.storage import Docker

    storage = Docker(image_name="flows/x", image_tag="1", base_image="python:3.11-slim",
                     base_url=f"unix://{tmp_path}/no-daemon.sock")
    storage.add_flow(Flow("f"))
    with pytest.raises(RemoteError) as err:
        storage.build(push=False)
    assert "no Docker daemon answers at unix://" in str(err.value) and "daemonless=True" in str(err.value)
    assert err.value.__cause__ is None and err.value.__context__ is None


def test_webhook_template_values_that_are_not_secrets_are_never_masked(monkeypatch):
    """Filling ${ORG} into a URL must not turn every "acme" into "***": only secrets and credential-named
    variables are masked."""
    from gitflows.blobs.webhook import fill
    from gitflows.redact import redact

    monkeypatch.setenv("ORG", "acme-corp")
    monkeypatch.setenv("UPLOAD_TOKEN", "tok-9f8e7d6c5b")
    filled = fill({"url": "https://hooks.example/${ORG}/flows", "headers": {"Authorization": "Bearer ${UPLOAD_TOKEN}"}})
    assert filled["url"] == "https://hooks.example/acme-corp/flows"
    assert redact("repo acme-corp/flows") == "repo acme-corp/flows"
    assert redact("Bearer tok-9f8e7d6c5b") == "Bearer ***"


def test_check_says_a_local_flow_in_a_repository_is_never_registered_and_how_to_fix_it(tmp_path):
    from .conftest import git

    git("init", "-q", "-b", "main", cwd=tmp_path)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(
        "from gitflows import Flow, task\nfrom gitflows.storage import Local\n\n@task\ndef t():\n    return 1\n\n"
        "with Flow('etl', storage=Local(path='flows/etl.py', stored_as_script=True)) as flow:\n    t()\n")
    result = run_cli("check", "flows/etl.py", cwd=tmp_path)
    assert result.returncode == 1
    assert ("flows/etl.py:8: flow 'etl': Local storage keeps the flow on this machine, so pushing never registers "
            "it; to register it from a push, use Git(flow_path='flows/etl.py', repo=...)") in result.stdout


@pytest.mark.parametrize("library, make", [
    ("boto3", lambda: __import__("gitflows.storage", fromlist=["S3"]).S3(
        bucket="flows", key="f.py", stored_as_script=True).get_flow()),
    ("google.cloud", lambda: __import__("gitflows.storage", fromlist=["GCS"]).GCS(
        bucket="flows", key="f.py", stored_as_script=True).get_flow()),
    ("azure.storage.blob", lambda: __import__("gitflows.storage", fromlist=["Azure"]).Azure(
        container="flows", blob_name="f.py", stored_as_script=True).get_flow()),
    ("atlassian", lambda: __import__("gitflows.storage", fromlist=["Bitbucket"]).Bitbucket(
        project="A", repo="r", host="http://127.0.0.1:9", path="f.py").get_flow()),
    ("dulwich", lambda: __import__("gitflows.storage", fromlist=["Git"]).Git(
        flow_path="f.py", repo="a/r", repo_host="http://127.0.0.1:9").get_flow()),
    ("docker", lambda: __import__("gitflows.storage", fromlist=["Docker"]).Docker(image_name="x").build()),
])
def test_a_missing_extra_names_the_line_that_installs_it(library, make, monkeypatch):
    import sys

    from gitflows.errors import GitflowsError

    for name in list(sys.modules):
        if name == library or name.startswith(library + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, library, None)  # as if the library were not installed
    with pytest.raises(GitflowsError) as err:
        make()
    message = str(err.value)
    assert "pip install -e '.[" in message and "in the gitflows checkout" in message, message
    assert len(message.splitlines()) == 1


RUNS_AT_IMPORT = '''from gitflows import Flow, task

@task
def mark():
    with open({marker!r}, "a") as fh:
        fh.write("ran\\n")

with Flow("etl") as flow:
    mark()

flow.run()
'''


def test_a_script_that_runs_its_flow_at_import_is_never_run_by_loading(tmp_path):
    marker = tmp_path / "marker"
    script = tmp_path / "etl.py"
    script.write_text(RUNS_AT_IMPORT.format(marker=str(marker)))
    listed = run_cli("flows", str(script))
    assert listed.returncode == 0 and "etl" in listed.stdout
    assert not marker.exists(), "listing the flows ran the flow"
    assert "flow.run()" in listed.stderr  # said, not silently ignored
    ran = run_cli("run", str(script))
    assert ran.returncode == 0, ran.stderr
    assert marker.read_text() == "ran\n"  # once, not twice


def test_doctor_names_what_to_fix(tmp_path):
    from .conftest import git

    git("init", "-q", "-b", "main", cwd=tmp_path)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(
        "from gitflows import Flow, task\nfrom gitflows.storage import GitHub\n\n@task\ndef t():\n    return 1\n\n"
        "with Flow('etl', storage=GitHub(repo='acme/flows', path='flows/etl.py', "
        "access_token_secret='DOCTOR_TOKEN_XYZ')) as flow:\n    t()\n")
    git("add", "-A", cwd=tmp_path)
    installed = run_cli("hooks", "install", cwd=tmp_path)
    assert installed.returncode == 0
    hook = tmp_path / ".git" / "hooks" / "pre-push"
    hook.write_text(hook.read_text().replace(__import__("sys").executable, "/gone/python"))
    env = {"GITFLOWS_REGISTRY": str(tmp_path / "reg.db")}
    result = run_cli("doctor", cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "PROBLEM secret DOCTOR_TOKEN_XYZ: named by flows/etl.py:8, not found" in out
    assert "PROBLEM hook pre-push: runs /gone/python, which is gone; reinstall with gitflows hooks install --force" in out
    assert "ok      hook pre-commit" in out and "ok      extra github: installed" in out
    assert "note    registry: no registry at" in out and not (tmp_path / "reg.db").exists()
    fixed = run_cli("doctor", cwd=tmp_path, env={**env, "DOCTOR_TOKEN_XYZ": "t0ken-value"})
    assert "ok      secret DOCTOR_TOKEN_XYZ: resolvable" in fixed.stdout and "t0ken-value" not in fixed.stdout


def test_shell_completion_as_documented():
    script = run_cli(env={"_GITFLOWS_COMPLETE": "bash_source"})
    assert script.returncode == 0 and "_gitflows_completion()" in script.stdout
    words = run_cli(env={"_GITFLOWS_COMPLETE": "bash_complete", "COMP_WORDS": "gitflows reg", "COMP_CWORD": "1"})
    assert "register" in words.stdout
    assert '_GITFLOWS_COMPLETE=bash_source gitflows' in (__import__("pathlib").Path(__file__).parents[1]
                                                         / "docs" / "cli.md").read_text()
