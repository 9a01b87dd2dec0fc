"""`gitflows diff` on real git repositories made here."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import git, run_cli

HELPER = "def scale(rows, factor):\n    return [r * factor for r in rows]\n"
ETL = '''from gitflows import Flow, Parameter, task
from gitflows.storage import Git
from lib.helpers import scale


@task
def extract(n):
    return list(range(n))


@task
def load(rows):
    return len(rows)


with Flow("etl", storage=Git(flow_path="flows/etl.py", repo="acme/flows", branch_name="main")) as flow:
    load(extract(Parameter("n", default=3)))
'''
ETL_HEAD = '''from gitflows import Flow, Parameter, task
from gitflows.storage import Git
from lib.helpers import scale


@task
def extract(n):
    return list(range(n))


@task
def clean(rows):
    return scale([r for r in rows if r], 2)


@task
def load(rows):
    return len(rows)


with Flow("etl", storage=Git(flow_path="flows/etl.py", repo="acme/flows", branch_name="dev",
                             git_token_secret_name="FLOWS_TOKEN")) as flow:
    load(clean(extract(Parameter("n", default=5))))
'''
SIMPLE = '''from gitflows import Flow, task
from gitflows.storage import Git


@task
def {task}():
    return 1


with Flow("{name}", storage=Git(flow_path="{path}", repo="acme/flows")) as flow:
    {task}()
'''
USES_HELPER = '''from gitflows import Flow, task
from gitflows.storage import Git
from lib.helpers import scale


@task
def go():
    return scale([1], 3)


with Flow("uses-helper", storage=Git(flow_path="flows/uses.py", repo="acme/flows")) as flow:
    go()
'''


def commit(repo, files, message):
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).strip()


@pytest.fixture
def repo(tmp_path):
    from types import SimpleNamespace

    path = tmp_path / "repo"
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    r = SimpleNamespace(path=path)
    r.base = commit(path, {
        "flows/etl.py": ETL, "flows/lib/helpers.py": HELPER, "flows/uses.py": USES_HELPER,
        "flows/old.py": SIMPLE.format(name="old", path="flows/old.py", task="t"),
        "flows/report.py": SIMPLE.format(name="report", path="flows/report.py", task="r"),
        "flows/other.py": SIMPLE.format(name="other", path="flows/other.py", task="o"),
        "flows/same.py": SIMPLE.format(name="same", path="flows/same.py", task="s"),
    }, "base")
    return r


def report_of(repo, *args):
    result = run_cli("diff", *args, "--format", "json", cwd=repo.path)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_every_kind_of_change(repo):
    git("mv", "flows/report.py", "flows/reports.py", cwd=repo.path)
    commit(repo.path, {
        "flows/etl.py": ETL_HEAD,
        "flows/lib/helpers.py": HELPER.replace("r * factor", "factor * r"),
        "flows/old.py": None,
        "flows/new.py": ETL.replace('"etl"', '"new"').replace("flows/etl.py", "flows/new.py"),
        "flows/other.py": SIMPLE.format(name="other-renamed", path="flows/other.py", task="o"),
        "flows/reports.py": SIMPLE.format(name="report", path="flows/reports.py", task="r"),
    }, "head")
    status_before = git("status", "--porcelain", cwd=repo.path)
    code, report = report_of(repo, repo.base)
    assert code == 1 and report["precision"] == "executed" and report["changed"]
    flows = {f["name"]: f for f in report["flows"]}
    etl = flows["etl"]
    assert etl["status"] == "changed"
    assert etl["tasks"] == {"added": ["clean"], "removed": [], "changed": []}
    assert ["clean", "load", "rows"] in etl["edges"]["added"] and ["extract", "load", "rows"] in etl["edges"]["removed"]
    assert etl["parameters"]["changed"] == {"n": {"base": 3, "head": 5}}
    assert etl["storage"]["changed"] == {"branch_name": {"base": "main", "head": "dev"}}
    assert etl["storage"]["added"] == {"git_token_secret_name": "FLOWS_TOKEN"}
    assert etl["files"]["changed"] == ["flows/lib/helpers.py"]
    assert etl["fingerprint"]["changed"]
    # only its imported helper changed: still reported, with the file that changed
    uses = flows["uses-helper"]
    assert uses["status"] == "changed" and uses["files"]["changed"] == ["flows/lib/helpers.py"]
    assert uses["script_changed"] is False
    assert flows["new"]["status"] == "added" and flows["old"]["status"] == "removed"
    assert flows["other-renamed"]["status"] == "renamed" and flows["other-renamed"]["old_name"] == "other"
    assert flows["report"]["status"] == "moved"
    assert flows["report"]["path"] == {"base": "flows/report.py", "head": "flows/reports.py"}
    assert "same" not in flows  # untouched flows are not even loaded
    assert git("status", "--porcelain", cwd=repo.path) == status_before  # the working tree is never touched

    text = run_cli("diff", repo.base, cwd=repo.path)
    assert text.returncode == 1
    assert "CHANGED   etl  (flows/etl.py)" in text.stdout
    assert "    + task clean" in text.stdout
    assert "    ~ parameter n: default 3 -> 5" in text.stdout
    assert "    ~ storage branch_name: 'main' -> 'dev'" in text.stdout
    assert "    ~ imported file changed: flows/lib/helpers.py" in text.stdout
    assert "RENAMED   other-renamed" in text.stdout and "renamed from 'other'" in text.stdout
    markdown = run_cli("diff", repo.base, "HEAD", "--format", "markdown", cwd=repo.path).stdout
    assert markdown.startswith("### gitflows: 6 flow(s) changed")
    assert "| `etl` | ✏️ changed | `flows/etl.py` |" in markdown
    assert "```diff\n+ task clean" in markdown


def test_no_flow_changed_exits_zero(repo):
    commit(repo.path, {"README.md": "docs\n"}, "docs only")
    result = run_cli("diff", repo.base, cwd=repo.path)
    assert result.returncode == 0
    assert "no flow changed" in result.stdout


def test_task_source_change_is_a_changed_task(repo):
    commit(repo.path, {"flows/etl.py": ETL.replace("return len(rows)", "return len(rows) + 0")}, "tweak")
    code, report = report_of(repo, repo.base)
    etl = {f["name"]: f for f in report["flows"]}["etl"]
    assert code == 1 and etl["tasks"]["changed"] == ["load"] and etl["fingerprint"]["changed"]


def test_syntax_error_on_one_side_is_reported_not_a_crash(repo):
    commit(repo.path, {"flows/etl.py": ETL.replace("def load(rows):", "def load(rows)")}, "broken")
    result = run_cli("diff", repo.base, "--format", "json", cwd=repo.path)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["errors"] and report["errors"][0]["side"] == "head"
    assert "flows/etl.py" in report["errors"][0]["path"] and "syntax error" in report["errors"][0]["error"]
    assert "Traceback" not in result.stderr


def test_missing_imports_fall_back_to_static_and_say_so(repo):
    commit(repo.path, {"flows/etl.py": "import pandas_not_installed_zz\n" + ETL_HEAD}, "needs pandas")
    code, report = report_of(repo, repo.base)
    assert code == 1 and report["precision"] == "static"
    etl = {f["name"]: f for f in report["flows"]}["etl"]
    assert etl["tasks"]["added"] == ["clean"]
    assert etl["parameters"]["changed"] == {"n": {"base": 3, "head": 5}}
    assert "edges" not in etl
    text = run_cli("diff", repo.base, cwd=repo.path).stdout
    assert "static comparison" in text


def test_unknown_ref_is_a_clear_error(repo):
    result = run_cli("diff", "origin/nope", cwd=repo.path)
    assert result.returncode == 2
    assert "ref 'origin/nope' not found" in result.stderr and "git fetch" in result.stderr


def test_refs_only_on_the_remote_once_fetched(repo, tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(remote)], check=True)
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(remote), str(other)], check=True)
    commit(other, {"flows/same.py": SIMPLE.format(name="same", path="flows/same.py", task="s2")}, "remote change")
    git("push", "-q", "origin", "main:feature", cwd=other)
    git("fetch", "-q", str(remote), "feature:refs/remotes/origin/feature", cwd=repo.path)
    code, report = report_of(repo, "HEAD", "origin/feature")
    assert code == 1 and [f["name"] for f in report["flows"]] == ["same"]
    assert report["flows"][0]["tasks"] == {"added": ["s2"], "removed": ["s"], "changed": []}


def _marker_helper(marker):
    return f'''"""Helpers. Not a flow, though this docstring says Flow( and a comment below does too."""
import pathlib

# with Flow("not-a-flow") as flow: ...
pathlib.Path({str(marker)!r}).write_text("executed")
'''


def test_diff_never_executes_a_file_that_merely_mentions_flow(repo, tmp_path):
    marker = tmp_path / "marker"
    commit(repo.path, {"flows/notes.py": _marker_helper(marker),
                       "flows/same.py": SIMPLE.format(name="same", path="flows/same.py", task="s2")}, "head")
    for fmt in ("text", "json"):
        result = run_cli("diff", repo.base, "--format", fmt, cwd=repo.path)
        assert result.returncode == 1, result.stderr
        assert not marker.exists(), "gitflows diff executed flows/notes.py"
    assert "notes.py" not in result.stdout


def test_a_script_that_exits_at_import_is_an_error_naming_it(repo):
    quits = SIMPLE.format(name="same", path="flows/same.py", task="s").replace(
        "\n\n@task", "\n\nimport os\nos._exit(0)\n\n@task", 1)
    commit(repo.path, {"flows/same.py": quits,
                       "flows/report.py": SIMPLE.format(name="report", path="flows/report.py", task="r2")}, "head")
    code, report = report_of(repo, repo.base)
    assert code == 1
    assert [e["path"] for e in report["errors"]] == ["flows/same.py"]
    assert "exit status 0" in report["errors"][0]["error"]
    assert [e["name"] for e in report["flows"] if e["status"] == "changed"] == ["report"]


EVIL = "<img src=x onerror=alert(1)>|[x](http://evil)`tick``"
EVIL_FLOW = '''from gitflows import Flow, Parameter, task
from gitflows.storage import Git


@task
def t(x):
    return x


with Flow({name!r}, storage=Git(flow_path="flows/evil.py", repo="acme/flows")) as flow:
    t(Parameter({name!r}, default={name!r}))
'''


def _outside_code(markdown: str) -> str:
    """The Markdown text with fenced blocks and code spans (CommonMark backtick runs) removed."""
    import re

    text = re.sub(r"^(`{3,})[^\n]*\n.*?^\1\s*$", "", markdown, flags=re.S | re.M)
    out, i = [], 0
    while i < len(text):
        m = re.compile(r"`+").search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i:m.start()])
        close = re.compile(rf"(?<!`){m.group()}(?!`)").search(text, m.end())
        if not close:
            out.append(text[m.start():])
            break
        i = close.end()
    return "".join(out)


def test_markdown_escapes_names(repo):
    base = git("rev-parse", "HEAD", cwd=repo.path).strip()
    commit(repo.path, {"flows/evil.py": EVIL_FLOW.format(name=EVIL)}, "head")
    result = run_cli("diff", base, "--format", "markdown", cwd=repo.path)
    assert result.returncode == 1, result.stderr
    md = result.stdout
    plain = _outside_code(md)
    for bad in ("<img", "](http", "[x]", "http://evil"):
        assert bad not in plain, f"{bad!r} is live Markdown/HTML in:\n{md}"
    rows = [line for line in md.splitlines() if line.startswith("| ") and "evil.py" in line]
    assert len(rows) == 1
    import re

    assert len(re.split(r"(?<!\\)\|", rows[0])) == 5, rows[0]  # 3 cells: a name's | does not add cells
    import html

    summary = re.search(r"<summary><code>(.*?)</code></summary>", md).group(1)
    assert "<" not in summary and html.unescape(summary) == EVIL  # shown as text in the <summary>


def test_a_retry_count_change_is_named(repo):
    commit(repo.path, {"flows/etl.py": ETL.replace("@task\ndef load(rows):", "@task(max_retries=3)\ndef load(rows):")},
           "retry load")
    code, report = report_of(repo, repo.base)
    etl = {f["name"]: f for f in report["flows"]}["etl"]
    assert code == 1 and etl["tasks"]["settings"] == {"load": {"max_retries": [0, 3]}}
    text = run_cli("diff", repo.base, cwd=repo.path).stdout
    assert "task load: max_retries 0 -> 3" in text


def test_static_when_asked_does_not_claim_a_fallback(repo):
    commit(repo.path, {"flows/etl.py": ETL.replace("return len(rows)", "return len(rows) + 0")}, "tweak")
    text = run_cli("diff", repo.base, "--static", cwd=repo.path).stdout
    assert "static comparison (--static)" in text and "not installed" not in text


def test_reports_show_no_absolute_path_of_the_reviewer(repo, tmp_path):
    exploding = ETL.replace("from gitflows import", "raise RuntimeError('boom')\nfrom gitflows import")
    commit(repo.path, {"flows/etl.py": exploding}, "explodes at import")
    for fmt in ("json", "markdown", "text"):
        result = run_cli("diff", repo.base, "--format", fmt, cwd=repo.path)
        assert result.returncode == 1, result.stderr
        assert "boom" in result.stdout
        assert str(tmp_path) not in result.stdout and "/root" not in result.stdout, result.stdout
        assert ".cache" not in result.stdout and "gitflows/" not in result.stdout.replace("gitflows diff", "")


def test_mapping_a_task_shows_as_its_edge_becoming_mapped(repo):
    """Issue 16: `load(extract(n))` -> `load.map(extract(n))` changes what runs (one load per row), so the diff
    says so: the edge removed and added again as mapped, and a new fingerprint."""
    commit(repo.path, {"flows/etl.py": ETL.replace("    load(extract(", "    load.map(extract(")}, "map load")
    code, report = report_of(repo, repo.base)
    etl = {f["name"]: f for f in report["flows"]}["etl"]
    assert code == 1
    assert etl["edges"] == {"added": [["extract", "load", "rows, mapped"]], "removed": [["extract", "load", "rows"]]}
    text = run_cli("diff", repo.base, cwd=repo.path).stdout
    assert "edge extract -> load (rows, mapped)" in text and "edge extract -> load (rows)" in text
