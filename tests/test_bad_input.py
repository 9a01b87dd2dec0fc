"""Bad input ends in one clear line: malformed storage dicts, odd script encodings, huge expressions,
scripts raising BaseException subclasses, oversized --param values (issue 12, "Bad input")."""

from __future__ import annotations

import click
import pytest

from gitflows.errors import ConfigurationError
from gitflows.storage import from_dict

from .conftest import run_cli

# -- 1. malformed storage dicts -------------------------------------------------------------------

@pytest.mark.parametrize(("data", "words"), [
    ({"type": "S3", "bucket": 5}, ["S3", "'bucket'", "str", "int"]),
    ({"type": "S3", "bucket": {"nested": "x"}}, ["S3", "'bucket'", "str", "dict"]),
    ({"type": "S3", "bucket": "b", "client_options": "x"}, ["S3", "'client_options'", "dict", "str"]),
    ({"type": "S3", "bucket": "b", "stored_as_script": "yes"}, ["S3", "'stored_as_script'", "bool", "str"]),
    ({"type": "GitHub", "repo": "a/b", "flows": ["a"]}, ["GitHub", "'flows'", "dict", "list"]),
    ({"type": "GitHub", "repo": "a/b", "flows": {"a": {"x": 1}}}, ["GitHub", "'flows'", "str", "dict"]),
    ({"type": "GitHub", "repo": "a/b", "labels": "x"}, ["GitHub", "'labels'", "list", "str"]),
    ({"type": "GitLab", "repo": "a/b", "secrets": {"a": 1}}, ["GitLab", "'secrets'", "list", "dict"]),
    ({"type": "GitLab", "repo": "a/b", "secrets": [1]}, ["GitLab", "'secrets'", "str", "int"]),
    ({"type": "Local", "directory": ["x"]}, ["Local", "'directory'", "str", "list"]),
    ({"type": "Local", "validate": "no"}, ["Local", "'validate'", "bool", "str"]),
    ({"type": "Module", "module": 3.5}, ["Module", "'module'", "str", "float"]),
    ({"type": "Git", "flow_path": "f.py", "repo": "a/b", "tag": 7}, ["Git", "'tag'", "str", "int"]),
    ({"type": "Webhook", "build_request_kwargs": [], "build_request_http_method": "PUT",
      "get_flow_request_kwargs": {}, "get_flow_request_http_method": "GET"},
     ["Webhook", "'build_request_kwargs'", "dict", "list"]),
    ({"type": "GitHub", "repo": "a/b", "sha": 12}, ["GitHub", "'sha'", "str", "int"]),
    ({"type": "S3", "bucket": "b", "digests": {"f": 1}}, ["S3", "'digests'", "str", "int"]),
])
def test_from_dict_checks_each_field_type(data, words):
    with pytest.raises(ConfigurationError) as info:
        from_dict(data)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


BACKEND_ARGS = {
    "Local": {"validate": False}, "Module": {"module": "m"}, "GitHub": {"repo": "a/b", "path": "f.py"},
    "GitLab": {"repo": "a/b", "path": "f.py"}, "Bitbucket": {"project": "P", "repo": "r", "path": "f.py"},
    "CodeCommit": {"repo": "r", "path": "f.py"}, "Git": {"flow_path": "f.py", "repo": "a/b"},
    "S3": {"bucket": "b"}, "GCS": {"bucket": "b"}, "Azure": {"container": "c"},
    "Webhook": {"build_request_kwargs": {"url": "http://127.0.0.1/x"}, "build_request_http_method": "PUT",
                "get_flow_request_kwargs": {"url": "http://127.0.0.1/x"}, "get_flow_request_http_method": "GET"},
    "Docker": {"image_name": "x", "image_tag": "1", "registry_url": "127.0.0.1:5000",
               "python_dependencies": ["a"], "env_vars": {"A": "b"}},
}


@pytest.mark.parametrize("type_name", sorted(BACKEND_ARGS))
def test_every_backend_checks_its_fields(type_name):
    from gitflows.storage import STORAGE_TYPES, storage_class
    from gitflows.storage.fieldtypes import field_types

    assert set(BACKEND_ARGS) == set(STORAGE_TYPES)
    cls = storage_class(type_name)
    assert {"labels", "secrets", "stored_as_script"} <= set(field_types(cls))  # every annotation resolved
    data = cls(**BACKEND_ARGS[type_name]).serialize()
    assert from_dict(data).serialize() == data
    for name, bad in (("labels", "x"), ("secrets", {"a": 1}), ("add_default_labels", "no"), ("flows", ["a"])):
        with pytest.raises(ConfigurationError, match=f"serialized {type_name} storage: field '{name}' must be"):
            from_dict({**data, name: bad})


def test_from_dict_accepts_what_serialize_wrote():
    from gitflows.storage import S3, GitHub, Local

    for storage in (S3(bucket="b", key="k", client_options={"region_name": "x"}, labels=["l"]),
                    GitHub(repo="a/b", path="f.py", secrets=["T"]), Local(directory="/tmp/x", validate=False)):
        again = from_dict(storage.serialize())
        assert again.serialize() == storage.serialize()


# -- 2. script encodings ---------------------------------------------------------------------------

LATIN1_SCRIPT = "# -*- coding: latin-1 -*-\nfrom gitflows import Flow\n\nflow = Flow('café')\n".encode("latin-1")
BOM_SCRIPT = b"\xef\xbb\xbf" + "from gitflows import Flow\n\nflow = Flow('naïve')\n".encode()
BAD_SCRIPT = b"from gitflows import Flow\n\nflow = Flow('x')  # caf\xe9\n"


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize(("data", "name"), [(LATIN1_SCRIPT, "café"), (BOM_SCRIPT, "naïve")])
def test_scripts_decode_as_python_does(tmp_path, data, name):
    from gitflows.inspection import inspect_file
    from gitflows.script import extract_flow_from_file

    path = tmp_path / "etl.py"
    path.write_bytes(data)
    assert extract_flow_from_file(str(path)).name == name
    assert extract_flow_from_file(file_contents=data).name == name
    assert [f.name for f in inspect_file(str(path)).flows] == [name]
    with_storage = data.replace(b"from gitflows import Flow\n",
                                b"from gitflows import Flow\nfrom gitflows.storage import Local\n")
    path.write_bytes(with_storage.replace(b"')\n", b"', storage=Local())\n"))
    result = run_cli("check", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_cli("flows", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert name in result.stdout.encode().decode("unicode_escape") or name in result.stdout


def test_undecodable_script_names_file_and_line(tmp_path):
    from gitflows.errors import ScriptError
    from gitflows.inspection import inspect_file
    from gitflows.script import extract_flow_from_file

    path = tmp_path / "etl.py"
    path.write_bytes(BAD_SCRIPT)
    for call in (lambda: extract_flow_from_file(str(path)), lambda: inspect_file(str(path))):
        with pytest.raises(ScriptError) as info:
            call()
        assert f"{path}:3:" in str(info.value) and "utf-8" in str(info.value).lower()
    for args in (("flows", str(path)), ("check", str(path)), ("run", str(path))):
        result = run_cli(*args)
        assert result.returncode in (1, 2), result
        # check prints one line per problem on stdout, and its summary on stderr
        line = one_line(result.stdout) if args[0] == "check" else one_line(result.stderr)
        assert "etl.py:3" in line and "utf-8" in line.lower(), line


# -- 3. huge expressions ---------------------------------------------------------------------------

HUGE = {
    "parens": "x = " + "(" * 100000 + ")" * 100000 + "\n",
    "sum": "x = " + "1+" * 100000 + "1\n",
    "unary": "x = " + "-" * 100000 + "1\n",
    "attributes": "x = " + "a." * 100000 + "b\n",
    "in-a-storage": "from gitflows import Flow\nfrom gitflows.storage import Local\n"
                    "flow = Flow('f', storage=Local(directory=" + "'a'+" * 50000 + "'b'))\n",
}


@pytest.mark.parametrize("kind", sorted(HUGE))
def test_huge_expressions_are_a_script_error(tmp_path, kind):
    from gitflows.errors import ScriptError
    from gitflows.inspection import inspect_file
    from gitflows.script import extract_flow_from_file

    path = tmp_path / "big.py"
    path.write_text(HUGE[kind])
    for call in (lambda: extract_flow_from_file(str(path)), lambda: inspect_file(str(path))):
        with pytest.raises(ScriptError) as info:
            call()
        assert str(path) in str(info.value)
    result = run_cli("check", str(path))
    assert result.returncode == 1, result
    assert "big.py" in one_line(result.stdout)
    result = run_cli("flows", str(path))
    assert result.returncode in (1, 2), result
    assert "big.py" in one_line(result.stderr)


def test_closure_of_a_huge_script_is_still_the_script():
    from gitflows.imports import local_closure

    files = {"flows/etl.py": HUGE["sum"].encode()}
    assert local_closure("flows/etl.py", files.__getitem__, files.__contains__) == ["flows/etl.py"]


# -- 4. BaseException subclasses at import ---------------------------------------------------------

STOP_SCRIPT = "class Stop(BaseException):\n    pass\n\n\nraise Stop('halt here')\n"


def test_script_raising_a_base_exception_is_a_script_error(tmp_path):
    from gitflows.errors import ScriptError
    from gitflows.script import extract_flow_from_file

    path = tmp_path / "etl.py"
    path.write_text(STOP_SCRIPT)
    with pytest.raises(ScriptError) as info:
        extract_flow_from_file(str(path))
    assert f"{path}:5:" in str(info.value) and "Stop" in str(info.value) and "halt here" in str(info.value)
    for args in (("flows", str(path)), ("run", str(path))):
        result = run_cli(*args)
        assert result.returncode == 2, result
        line = one_line(result.stderr)
        assert "etl.py:5" in line and "Stop" in line, line


def test_a_real_ctrl_c_still_interrupts(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import REPO_ROOT

    marker = tmp_path / "started"
    path = tmp_path / "slow.py"
    path.write_text(f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(30)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "gitflows", "flows", str(path)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert one_line(stderr) == "interrupted"


# -- 5. --param values ---------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "words"), [
    ("1e999999", ["not a finite number"]),
    ("-1e999999", ["not a finite number"]),
    ("[1, Infinity]", ["not a finite number"]),
    ("9" * 100000, ["100000 digits", "limit"]),
    ("[" * 100000, ["nested too deeply"]),
    ('{"a": ' * 15000, ["nested too deeply"]),  # a command-line argument holds at most 128 KiB
    ("[" * 50000 + "]" * 50000, ["nested too deeply"]),
])
def test_param_values_that_cannot_be_numbers_or_json_are_one_line(tmp_path, value, words):
    from gitflows.cli import parse_params

    (tmp_path / "f.py").write_text("from gitflows import Flow\nflow = Flow('f')\n")
    result = run_cli("run", "f.py", "--param", f"n={value}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-500:]
    line = one_line(result.stderr)
    assert "--param n" in line and len(line) < 300, line
    for word in words:
        assert word in line, line
    with pytest.raises(click.BadParameter) as info:
        parse_params((f"n={value}",))
    assert "--param n" in info.value.format_message()


def test_ordinary_param_values_still_parse():
    from gitflows.cli import parse_params

    nested = "[" * 50 + "]" * 50
    assert parse_params(("n=5", "name=bob", "x=1.5", "big=" + "9" * 100, f"deep={nested}", "s=NaNa")) == {
        "n": 5, "name": "bob", "x": 1.5, "big": int("9" * 100), "deep": eval(nested), "s": "NaNa"}


def test_a_usage_error_is_one_line(tmp_path):
    result = run_cli("run", "f.py", "--param", "n", cwd=tmp_path)
    assert result.returncode == 2
    assert "expected KEY=VALUE" in one_line(result.stderr)
