"""Flow scripts, read without running them: what the syntax tree says.

:func:`inspect_file` reads flow names, storage settings, parameters, task digests and imported
modules from a script's syntax tree alone — for hooks whose environment lacks the flow's own
third-party imports, and to decide what may be executed at all (nothing is executed that this did
not identify as a flow script). :func:`decode_script` decodes source bytes as Python does.
"""

from __future__ import annotations

import ast
import hashlib
import io
import tokenize
from dataclasses import dataclass, field
from typing import Any

from gitflows.errors import PathNotFoundError, ScriptError
from gitflows.imports import ImportRef, imports_in, parse, too_deep


def read_script(file_path: str) -> bytes:
    try:
        with open(file_path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise PathNotFoundError(f"flow script {file_path} does not exist") from None
    except IsADirectoryError:
        raise PathNotFoundError(f"flow script {file_path} is a directory, not a file") from None
    except PermissionError:
        raise PathNotFoundError(f"flow script {file_path} cannot be read (permission denied)") from None


def decode_script(data: str | bytes, display: str) -> str:
    """A script's text, decoded as Python decodes a source file: a UTF-8 BOM, a PEP 263 coding line, else UTF-8.

    Undecodable bytes, an unknown or invalid coding line are a one-line :class:`ScriptError` naming the file
    (and the line of the first bad byte)."""
    if isinstance(data, str):
        return data
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise ScriptError(f"{display}: {exc.msg}; save the file as UTF-8 or fix its '# -*- coding: ... -*-' "
                          "line") from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        label = "UTF-8" if encoding in ("utf-8", "utf-8-sig") else encoding
        raise ScriptError(f"{display}:{line}: byte 0x{data[exc.start]:02x} is not valid {label} ({exc.reason}); "
                          "save the file as UTF-8 or declare its encoding with a '# -*- coding: ... -*-' "
                          "line") from None
    # Universal newlines, as importlib.util.decode_source.
    return io.IncrementalNewlineDecoder(None, translate=True).decode(text, final=True)



UNKNOWN = "<dynamic>"


@dataclass
class StaticStorage:
    """A storage constructor call found in the syntax tree."""

    type: str
    args: dict[str, Any]
    lineno: int


@dataclass
class StaticFlow:
    """A flow found in the syntax tree, with what could be read without running anything."""

    name: str | None
    variable: str | None
    lineno: int
    storage: StaticStorage | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)


@dataclass
class ScriptInfo:
    """What :func:`inspect_file` read from a script."""

    path: str
    flows: list[StaticFlow]
    imports: list[ImportRef]
    tasks: dict[str, str]  # task function name -> digest of its source


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _literal(node: ast.AST | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return f"{UNKNOWN}: {ast.unparse(node)}"


def _is_task_decorator(dec: ast.AST) -> bool:
    return _call_name(dec) == "task"


def _storage_from(node: ast.AST | None, assigned: dict[str, ast.Call]) -> StaticStorage | None:
    if isinstance(node, ast.Name) and node.id in assigned:
        node = assigned[node.id]
    if not isinstance(node, ast.Call):
        return None
    name = _call_name(node)
    if not name:
        return None
    args: dict[str, Any] = {f"arg{i}": _literal(a) for i, a in enumerate(node.args)}
    for kw in node.keywords:
        if kw.arg:
            args[kw.arg] = _literal(kw.value)
    return StaticStorage(type=name, args=args, lineno=node.lineno)


def _flow_call(node: ast.AST) -> ast.Call | None:
    if isinstance(node, ast.Call) and _call_name(node) == "Flow":
        return node
    return None


def _flow_name(call: ast.Call) -> str | None:
    arg = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "name"), None)
    value = _literal(arg)
    return value if isinstance(value, str) and not value.startswith(UNKNOWN) else None


def _scan_body(body: list[ast.stmt], flow: StaticFlow, task_names: set[str]) -> None:
    for stmt in body:
        for node in ast.walk(stmt):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            if name == "Parameter":
                pname = _literal(node.args[0]) if node.args else _literal(
                    next((k.value for k in node.keywords if k.arg == "name"), None))
                default = next((k.value for k in node.keywords if k.arg == "default"), None)
                if default is None and len(node.args) > 1:
                    default = node.args[1]
                if isinstance(pname, str):
                    flow.parameters[pname] = _literal(default)
            elif name in task_names:
                flow.tasks.append(name)


def inspect_file(path: str | None = None, contents: str | bytes | None = None) -> ScriptInfo:
    """Read flows, storages, parameters and imports from a script's syntax tree, without executing it."""
    if contents is None:
        if path is None:
            raise ScriptError("give path or contents")
        contents = read_script(path)
    display = path or "<contents>"
    source = decode_script(contents, display)
    try:
        tree = parse(source, filename=display)
    except SyntaxError as exc:
        raise ScriptError(f"{display}:{exc.lineno}: syntax error: {exc.msg}") from exc
    try:
        return _inspect_tree(tree, source, display)
    except (RecursionError, MemoryError) as exc:  # ast.unparse / literal_eval of a tree deeper than the stack
        raise too_deep(display, exc) from None


def _inspect_tree(tree: ast.Module, source: str, display: str) -> ScriptInfo:
    tasks = _task_digests(tree, source)
    assigned = _assigned_calls(tree)
    flows, by_var = _declared_flows(tree, assigned, set(tasks))
    _apply_storage_assignments(tree, assigned, by_var)
    flows.sort(key=lambda f: f.lineno)
    return ScriptInfo(path=display, flows=flows, imports=imports_in(tree), tasks=tasks)


def _task_digests(tree: ast.Module, source: str) -> dict[str, str]:
    """The module's top-level tasks (``@task`` functions, ``name = task(...)``), each with a digest of its source."""
    tasks: dict[str, str] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                _is_task_decorator(d) for d in stmt.decorator_list):
            segment = ast.get_source_segment(source, stmt) or stmt.name
            tasks[stmt.name] = hashlib.sha256(segment.encode()).hexdigest()[:16]
        elif isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call) and _call_name(stmt.value) == "task":
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    tasks[target.id] = hashlib.sha256(ast.unparse(stmt).encode()).hexdigest()[:16]
    return tasks


def _assigned_calls(tree: ast.Module) -> dict[str, ast.Call]:
    """Each name bound by ``name = call(...)`` anywhere in the tree, with the call (the last one in walk order)."""
    assigned: dict[str, ast.Call] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = node.value
    return assigned


def _declared_flows(tree: ast.Module, assigned: dict[str, ast.Call],
                    task_names: set[str]) -> tuple[list[StaticFlow], dict[str, StaticFlow]]:
    """The flows of ``with Flow(...) as f:`` blocks and ``f = Flow(...)`` assignments in walk order, and
    the flows by the variable they are bound to (the last one wins)."""
    flows: list[StaticFlow] = []
    by_var: dict[str, StaticFlow] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            found = _flows_of_with(node, assigned, task_names)
        elif isinstance(node, ast.Assign):
            found = _flows_of_assign(node, assigned)
        else:
            continue
        for sf in found:
            flows.append(sf)
            if sf.variable:
                by_var[sf.variable] = sf
    return flows, by_var


def _storage_keyword(call: ast.Call) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == "storage"), None)


def _flows_of_with(node: ast.With, assigned: dict[str, ast.Call], task_names: set[str]) -> list[StaticFlow]:
    """``with Flow(...) as f:`` — a flow per ``Flow(...)`` item, with the parameters and tasks of the block."""
    flows = []
    for item in node.items:
        call = _flow_call(item.context_expr)
        if call is None:
            continue
        var = item.optional_vars.id if isinstance(item.optional_vars, ast.Name) else None
        sf = StaticFlow(_flow_name(call), var, call.lineno, _storage_from(_storage_keyword(call), assigned))
        _scan_body(node.body, sf, task_names)
        flows.append(sf)
    return flows


def _flows_of_assign(node: ast.Assign, assigned: dict[str, ast.Call]) -> list[StaticFlow]:
    """``f = Flow(...)`` — a flow per plain name assigned (none when the value is not a ``Flow(...)`` call)."""
    call = _flow_call(node.value)
    if call is None:
        return []
    storage_kw = _storage_keyword(call)
    return [StaticFlow(_flow_name(call), target.id, call.lineno, _storage_from(storage_kw, assigned))
            for target in node.targets if isinstance(target, ast.Name)]


def _apply_storage_assignments(tree: ast.Module, assigned: dict[str, ast.Call], by_var: dict[str, StaticFlow]) -> None:
    """``f.storage = Storage(...)`` anywhere in the tree sets the storage of the flow bound to ``f``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (isinstance(target, ast.Attribute) and target.attr == "storage"
                        and isinstance(target.value, ast.Name) and target.value.id in by_var):
                    by_var[target.value.id].storage = _storage_from(node.value, assigned)
