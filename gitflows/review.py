"""``gitflows diff BASE [HEAD]``: what a change does to each flow, read from the git object database.

Both sides are read with ``git ls-tree`` / ``git cat-file`` (no checkout; the working tree is never
touched). A flow is compared when its script, or a repository file the script imports, changed.
Each side is described by running the script from the committed files when its imports are
installed ("executed": tasks, edges, parameters, storage, fingerprint; in a child process, so that a
script calling ``os._exit`` cannot end the diff), else from its syntax tree ("static": tasks
called, their source, parameters, storage; no edges) — and the report says which.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from gitflows.cache import Cache, closure_key
from gitflows.errors import GitflowsError, RefNotFoundError, ScriptError
from gitflows.localgit import Snapshot, git
from gitflows.register import ScriptRunner, flow_scripts

VOLATILE = {"flows", "__version__", "sha", "closures", "digests", "labels", "add_default_labels"}


@dataclass
class FlowSide:
    name: str
    path: str
    precision: str  # executed | static
    tasks: dict[str, str | None]  # task name -> source digest
    edges: set[tuple[str, str, str]] | None
    parameters: dict[str, Any]
    storage: dict[str, Any]
    fingerprint: str
    closure: list[tuple[str, str]]
    retries: dict[str, int] = field(default_factory=dict)  # task name -> max_retries (executed side only)


@dataclass
class ScriptSide:
    flows: dict[str, FlowSide] = field(default_factory=dict)
    error: str | None = None


def resolve(root: str, ref: str) -> str:
    try:
        return git(root, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}").decode().strip()
    except GitflowsError:
        raise RefNotFoundError(f"ref {ref!r} not found in {root}; if it exists only on the remote, fetch it first "
                               f"(git fetch origin {ref})") from None


def _storage_args(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in VOLATILE and v not in (None, [], {})}


def _static(snap: Snapshot, script: str, closure: list[tuple[str, str]]) -> ScriptSide:
    try:
        info = snap.inspect(script)
    except ScriptError as exc:
        return ScriptSide(error=str(exc).replace("<contents>", script))
    side = ScriptSide()
    for sf in info.flows:
        if sf.name is None:
            continue
        tasks = {t: info.tasks.get(t) for t in dict.fromkeys(sf.tasks)}
        storage = {"type": sf.storage.type, **sf.storage.args} if sf.storage else {}
        fp = hashlib.sha256(json.dumps([tasks, sf.parameters, storage], sort_keys=True, default=str).encode()).hexdigest()
        side.flows[sf.name] = FlowSide(sf.name, script, "static", tasks, None, dict(sf.parameters),
                                       _storage_args(storage), "static:" + fp, closure)
    return side


def _executed(snap: Snapshot, script: str, closure: list[tuple[str, str]], cache: Cache,
              runner: ScriptRunner) -> ScriptSide | None:
    """None when the script's imports are not installed here (fall back to static)."""
    files = {p: snap.read(p) for p, _ in closure}
    tree = cache.materialise(closure_key(("local",), snap.sha, closure), files)
    with cache.using(tree):
        result = runner.run(str(tree.joinpath(*script.split("/"))), [str(tree)], f"{script} at {snap.sha[:12]}")
    if result.missing_import:
        return None
    if result.error:
        return ScriptSide(error=result.error)
    side = ScriptSide()
    for flow in result.flows:
        structure = flow["structure"]
        tasks = {t["name"]: t.get("source") for t in structure["tasks"] if t["kind"] == "task"}
        edges = {(e["upstream"], e["downstream"], edge_key(e)) for e in structure["edges"]}
        params = {p["name"]: p["default"] for p in structure["parameters"]}
        storage = _storage_args(flow["storage"]) if flow["storage"] is not None else {}
        retries = {t["name"]: int(t.get("max_retries") or 0) for t in structure["tasks"] if t["kind"] == "task"}
        side.flows[flow["name"]] = FlowSide(flow["name"], script, "executed", tasks, edges, params, storage,
                                            flow["fingerprint"], closure, retries)
    return side


def edge_key(edge: dict[str, Any]) -> str:
    """The edge's argument name, with ``mapped`` added when the downstream task maps over it."""
    key = edge["key"] or ""
    return ", ".join(p for p in (key, "mapped" if edge.get("mapped") else "") if p)


def describe(snap: Snapshot, script: str, cache: Cache, static: bool, runner: ScriptRunner) -> ScriptSide:
    closure = snap.closure(script)
    if not static:
        side = _executed(snap, script, closure, cache, runner)
        if side is not None:
            return side
    return _static(snap, script, closure)


def _changed_paths(root: str, base: str, head: str) -> tuple[set[str], dict[str, str]]:
    out = git(root, "diff", "--name-status", "-M", "-z", base, head).decode("utf-8", "surrogateescape").split("\0")
    changed: set[str] = set()
    renames: dict[str, str] = {}
    i = 0
    while i < len(out) and out[i]:
        status = out[i]
        if status.startswith(("R", "C")):
            old, new = out[i + 1], out[i + 2]
            changed |= {old, new}
            if status.startswith("R"):
                renames[old] = new
            i += 3
        else:
            changed.add(out[i + 1])
            i += 2
    return changed, renames


def diff(root: str, base_ref: str, head_ref: str = "HEAD", force_static: bool = False,
         fell_back: bool = False) -> dict[str, Any]:
    """The report (see docs/review.md for the schema). *fell_back*: static because some flow's imports are
    not installed here (not because it was asked)."""
    base, head = resolve(root, base_ref), resolve(root, head_ref)
    snaps = {"base": Snapshot(root, base), "head": Snapshot(root, head)}
    changed, renames = _changed_paths(root, base, head)
    cache = Cache()
    scripts = {k: flow_scripts(s) for k, s in snaps.items()}
    affected: dict[str, set[str]] = {"base": set(), "head": set()}
    for k, snap in snaps.items():
        for script in scripts[k]:
            if script in changed or {p for p, _ in snap.closure(script)} & changed:
                affected[k].add(script)
    # a renamed script is compared with its old self
    for old, new in renames.items():
        if old in scripts["base"]:
            affected["base"].add(old)
        if new in scripts["head"]:
            affected["head"].add(new)
    sides: dict[str, dict[str, ScriptSide]] = {"base": {}, "head": {}}
    static = force_static
    with ScriptRunner() as runner:  # scripts run in a child process: none can end the diff
        for k in ("base", "head"):
            for script in sorted(affected[k]):
                sides[k][script] = describe(snaps[k], script, cache, static, runner)
                if any(f.precision == "static" for f in sides[k][script].flows.values()):
                    static = True
    if static and not force_static:  # compare like with like
        return diff(root, base_ref, head_ref, force_static=True, fell_back=True)
    report = _report(base, head, sides, renames, changed, static)
    if static:
        report["static_reason"] = "imports not installed" if fell_back else "asked"
    return report


def _report(base: str, head: str, sides: dict[str, dict[str, ScriptSide]], renames: dict[str, str],
            changed: set[str], static: bool) -> dict[str, Any]:
    flows: dict[str, dict[str, FlowSide]] = {"base": {}, "head": {}}
    errors: list[dict[str, str]] = []
    for k in ("base", "head"):
        for script, side in sides[k].items():
            if side.error:
                errors.append({"side": k, "path": script, "error": side.error})
            for name, f in side.flows.items():
                flows[k][name] = f
    entries: list[dict[str, Any]] = []
    names = sorted(set(flows["base"]) | set(flows["head"]))
    removed = {n for n in names if n not in flows["head"]}
    added = {n for n in names if n not in flows["base"]}
    # a flow renamed in place: one removed and one added in the same script (or its renamed self)
    renamed: dict[str, str] = {}
    for old in sorted(removed):
        old_path = flows["base"][old].path
        candidates = [n for n in added if flows["head"][n].path in (old_path, renames.get(old_path))
                      and n not in renamed.values()]
        if len(candidates) == 1:
            renamed[old] = candidates[0]
    broken = {e["path"] for e in errors}
    for name in names:
        if name in renamed.values():
            continue
        b = flows["base"].get(name)
        h = flows["head"].get(renamed.get(name, name))
        if b is None and h is not None and h.path in broken:
            continue
        if h is None and b is not None and name not in renamed and (b.path in broken or renames.get(b.path) in broken):
            continue
        entries.append(_compare(name, b, h, renamed.get(name), changed))
    changed_flows = [e for e in entries if e["status"] != "unchanged"]
    return {"schema": 1, "base": base, "head": head, "precision": "static" if static else "executed",
            "changed": bool(changed_flows or errors), "flows": entries, "errors": errors}


def _dict_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {"added": {k: b[k] for k in sorted(set(b) - set(a))},
            "removed": {k: a[k] for k in sorted(set(a) - set(b))},
            "changed": {k: {"base": a[k], "head": b[k]} for k in sorted(set(a) & set(b)) if a[k] != b[k]}}


def _compare(name: str, b: FlowSide | None, h: FlowSide | None, new_name: str | None, changed: set[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": new_name or name, "old_name": name if new_name else None,
                             "path": {"base": b.path if b else None, "head": h.path if h else None}}
    if b is None or h is None:
        entry["status"] = "added" if b is None else "removed"
        side = h or b
        assert side is not None
        entry["tasks"] = sorted(side.tasks)
        entry["parameters"] = side.parameters
        entry["storage"] = side.storage
        return entry
    tasks = _dict_diff(b.tasks, h.tasks)
    settings = {t: {"max_retries": [b.retries[t], h.retries[t]]} for t in set(b.retries) & set(h.retries)
                if b.retries[t] != h.retries[t]}
    entry["tasks"] = {"added": sorted(tasks["added"]), "removed": sorted(tasks["removed"]),
                      "changed": sorted(set(tasks["changed"]) | set(settings))}
    if settings:  # a task's settings changed (max_retries): which, and whether its source did too
        entry["tasks"]["settings"] = settings
        entry["tasks"]["source_changed"] = sorted(tasks["changed"])
    if b.edges is not None and h.edges is not None:
        entry["edges"] = {"added": sorted(list(e) for e in h.edges - b.edges),
                          "removed": sorted(list(e) for e in b.edges - h.edges)}
    entry["parameters"] = _dict_diff(b.parameters, h.parameters)
    entry["storage"] = _dict_diff(b.storage, h.storage)
    entry["fingerprint"] = {"base": b.fingerprint, "head": h.fingerprint, "changed": b.fingerprint != h.fingerprint}
    base_files, head_files = dict(b.closure), dict(h.closure)
    entry["files"] = {"changed": sorted(p for p in set(base_files) | set(head_files)
                                        if base_files.get(p) != head_files.get(p) and p not in (b.path, h.path))}
    entry["script_changed"] = base_files.get(b.path) != head_files.get(h.path)
    something = (new_name or b.path != h.path or entry["fingerprint"]["changed"] or entry["files"]["changed"]
                 or entry["script_changed"] or any(entry["storage"][k] for k in ("added", "removed", "changed")))
    entry["status"] = ("renamed" if new_name else "moved" if b.path != h.path else
                       "changed" if something else "unchanged")
    return entry


# -- output ---------------------------------------------------------------------------------

def _lines(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, text) lines for one flow; kind is one of add, remove, change, info."""
    if entry["status"] in ("added", "removed"):
        return _whole_flow_lines(entry)
    out = [*_identity_lines(entry), *_task_lines(entry["tasks"]), *_edge_lines(entry.get("edges", {})),
           *_parameter_lines(entry["parameters"]), *_storage_lines(entry["storage"])]
    out += [("change", f"imported file changed: {f}") for f in entry["files"]["changed"]]
    if entry["fingerprint"]["changed"]:
        out.append(("info", "fingerprint changed"))
    elif entry["status"] == "changed" and not out:
        out.append(("info", "script text changed; structure and fingerprint unchanged"))
    return out


def _whole_flow_lines(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """An added or removed flow: its tasks and parameters."""
    out = [("info", f"tasks: {', '.join(entry['tasks']) or 'none'}")]
    if entry["parameters"]:
        out.append(("info", "parameters: " + ", ".join(f"{k}={v!r}" for k, v in entry["parameters"].items())))
    return out


def _identity_lines(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """A flow renamed, its script moved."""
    out: list[tuple[str, str]] = []
    if entry.get("old_name"):
        out.append(("change", f"renamed from {entry['old_name']!r}"))
    if entry["path"]["base"] != entry["path"]["head"]:
        out.append(("change", f"script moved: {entry['path']['base']} -> {entry['path']['head']}"))
    return out


def _task_lines(tasks: dict[str, Any]) -> list[tuple[str, str]]:
    def what(t: str) -> str:
        settings = tasks.get("settings", {}).get(t, {})
        parts = [f"{k} {v[0]} -> {v[1]}" for k, v in sorted(settings.items())]
        if t in tasks.get("source_changed", tasks["changed"]):
            parts.append("source changed")
        return "; ".join(parts)

    return ([("add", f"task {t}") for t in tasks["added"]]
            + [("remove", f"task {t}") for t in tasks["removed"]]
            + [("change", f"task {t}: {what(t)}") for t in tasks["changed"]])


def _edge_lines(edges: dict[str, list[list[str]]]) -> list[tuple[str, str]]:
    def text(e: list[str]) -> str:
        return f"edge {e[0]} -> {e[1]}" + (f" ({e[2]})" if e[2] else "")

    return ([("add", text(e)) for e in edges.get("added", [])]
            + [("remove", text(e)) for e in edges.get("removed", [])])


def _parameter_lines(p: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    return ([("add", f"parameter {k} (default {v!r})") for k, v in p["added"].items()]
            + [("remove", f"parameter {k}") for k in p["removed"]]
            + [("change", f"parameter {k}: default {v['base']!r} -> {v['head']!r}") for k, v in p["changed"].items()])


def _storage_lines(s: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    return ([("add", f"storage {k} = {v!r}") for k, v in s["added"].items()]
            + [("remove", f"storage {k} (was {v!r})") for k, v in s["removed"].items()]
            + [("change", f"storage {k}: {v['base']!r} -> {v['head']!r}") for k, v in s["changed"].items()])


def format_text(report: dict[str, Any], color: bool = False) -> str:
    import click

    styles = {"add": ("+", "green"), "remove": ("-", "red"), "change": ("~", "yellow"), "info": (" ", None)}
    static = ""
    if report["precision"] == "static":
        static = (" (static comparison (--static): edges not compared)" if report.get("static_reason") == "asked"
                  else " (static comparison: the flows' imports are not installed here; edges not compared)")
    lines = [f"gitflows diff {report['base'][:12]}..{report['head'][:12]}{static}"]
    shown = [e for e in report["flows"] if e["status"] != "unchanged"]
    for e in shown:
        head = f"{e['status'].upper():<9} {e['name']}  ({e['path']['head'] or e['path']['base']})"
        lines.append(click.style(head, bold=True) if color else head)
        for kind, text in _lines(e):
            mark, fg = styles[kind]
            line = f"    {mark} {text}"
            lines.append(click.style(line, fg=fg) if color and fg else line)
    for err in report["errors"]:
        line = f"ERROR     {err['path']} ({err['side']}): {err['error']}"
        lines.append(click.style(line, fg="red") if color else line)
    if not shown and not report["errors"]:
        lines.append("no flow changed")
    return "\n".join(lines)


_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


def _one_line(text: Any) -> str:
    return _LINE_BREAKS.sub(" ", str(text))


def _md_code(text: Any, in_table: bool = False) -> str:
    """*text* as a Markdown code span: nothing in it is markup (HTML, links, mentions, emphasis).

    The fence is one backtick longer than the longest run inside; in a table cell ``|`` is escaped
    so that a name cannot add cells."""
    text = _one_line(text)
    if not text:
        return ""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    return span.replace("|", "\\|") if in_table else span


def _html_text(text: Any) -> str:
    """*text* for raw HTML: every ASCII punctuation character as an entity (no tag, link or emphasis)."""
    return "".join(f"&#{ord(c)};" if c.isascii() and not c.isalnum() and c != " " else c for c in _one_line(text))


def _md_fence(lines: list[str]) -> str:
    """A fence no line of *lines* can close (each line is already one line)."""
    return "`" * max(3, max((len(run) + 1 for line in lines for run in re.findall("`+", line)), default=0))


def format_markdown(report: dict[str, Any]) -> str:
    """Markdown for a pull-request comment. Every name and value from the scripts is escaped:
    code spans in text and tables, HTML entities in ``<summary>``, a fence no line can close."""
    icons = {"added": "🆕", "removed": "🗑️", "changed": "✏️", "renamed": "🔀", "moved": "📦"}
    shown = [e for e in report["flows"] if e["status"] != "unchanged"]
    out = [f"### gitflows: {len(shown)} flow(s) changed between `{report['base'][:12]}` and `{report['head'][:12]}`", ""]
    if report["precision"] == "static":
        out += ["> Static comparison: the flows' imports are not installed where this ran; edges were not compared.", ""]
    if shown:
        out += ["| flow | change | script |", "|---|---|---|"]
        for e in shown:
            out.append(f"| {_md_code(e['name'], in_table=True)} | {icons.get(e['status'], '')} {e['status']} | "
                       f"{_md_code(e['path']['head'] or e['path']['base'], in_table=True)} |")
        out.append("")
        for e in shown:
            details = _lines(e)
            if not details:
                continue
            lines = [{"add": "+ ", "remove": "- ", "change": "! ", "info": "# "}[kind] + _one_line(text)
                     for kind, text in details]
            fence = _md_fence(lines)
            out += [f"<details><summary><code>{_html_text(e['name'])}</code></summary>", "",
                    f"{fence}diff", *lines, fence, "", "</details>", ""]
    else:
        out.append("No flow changed.")
    for err in report["errors"]:
        out.append(f"- ⚠️ {_md_code(err['path'])} ({err['side']}): {_md_code(err['error'])}")
    return "\n".join(out).rstrip() + "\n"
