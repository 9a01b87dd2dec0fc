"""Flow scripts: the one place that executes them, and a static reader that does not.

:func:`extract_flow_from_file` runs a script with ``__file__`` set and its own
folder on ``sys.path`` (so sibling modules import), collects the flows it
defines, and restores ``sys.path`` and ``sys.modules`` afterwards.

:func:`inspect_file` reads the same facts it can from the syntax tree alone —
flow names, storage settings, parameters, imported modules — for hooks whose
environment lacks the flow's own third-party imports.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import io
import linecache
import operator
import os
import sys
import tokenize
import traceback
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gitflows.errors import (
    ConfigurationError,
    FlowNotFoundError,
    ModuleMissingError,
    PathNotFoundError,
    ScriptError,
    WrongTypeError,
)
from gitflows.flow import Flow, loading_flow, select_flow
from gitflows.imports import ImportRef, imports_in, parse, too_deep

SCRIPT_MODULE_NAME = "__gitflows_script__"


def _under(path: str, roots: Iterable[str]) -> bool:
    path = os.path.realpath(path)
    for root in roots:
        root = os.path.realpath(root)
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


@contextlib.contextmanager
def script_environment(paths: Iterable[str]) -> Iterator[None]:
    """Put *paths* first on ``sys.path``; afterwards restore it and unload modules imported from them.

    Modules imported from elsewhere (installed packages first imported by the
    script) stay loaded: unloading C extensions is not safe. Modules from
    *paths* are removed, so two versions of one repository can be loaded in
    the same process one after the other.
    """
    roots = [os.path.abspath(p) for p in paths]
    saved_path = list(sys.path)
    before = set(sys.modules)
    sys.path[:0] = roots
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - before:
            module = sys.modules.get(name)
            locations = [getattr(module, "__file__", None) or ""]
            locations += list(getattr(module, "__path__", None) or [])
            if any(loc and _under(loc, roots) for loc in locations):
                del sys.modules[name]


def _read(file_path: str) -> bytes:
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


def _script_line(exc: BaseException, filename: str) -> int | None:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == filename:
            return frame.lineno
    return None


def run_script(file_path: str | None = None, file_contents: str | bytes | None = None,
               extra_paths: Iterable[str] = (), display_name: str | None = None) -> types.ModuleType:
    """Execute a flow script and return its module namespace (see module docs for the rules)."""
    if file_path is None and file_contents is None:
        raise ScriptError("give file_path or file_contents")
    if file_contents is None:
        assert file_path is not None
        file_contents = _read(file_path)
    display = display_name or (file_path if file_path is not None else "<file_contents>")
    source = decode_script(file_contents, display)
    if file_path is not None:
        filename = os.path.abspath(file_path)
    else:
        filename = f"<gitflows-script-{hashlib.sha256(source.encode()).hexdigest()[:12]}>"
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise ScriptError(f"{display}:{exc.lineno}: syntax error: {exc.msg}") from exc
    except (RecursionError, MemoryError) as exc:
        raise too_deep(display, exc) from None
    # Keep the executed text in linecache: tracebacks and task source digests
    # then show what ran, even when the file changed (or never existed).
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)

    module = types.ModuleType(SCRIPT_MODULE_NAME)
    module.__file__ = filename
    paths = list(extra_paths)
    if file_path is not None:
        paths.insert(0, os.path.dirname(filename))
    loading = loading_flow.set(True)
    with script_environment(paths):
        try:
            exec(code, module.__dict__)
        except ModuleNotFoundError as exc:
            line = _script_line(exc, filename)
            where = f"{display}:{line}" if line else display
            raise ScriptError(
                f"{where}: cannot import module {exc.name!r}: not installed here, and no sibling "
                f"file {str(exc.name).replace('.', '/')}.py next to the script"
            ) from exc
        except SystemExit as exc:
            raise ScriptError(f"{display}: the script called exit({exc.code!r}) while being loaded") from exc
        except KeyboardInterrupt:
            raise  # a real Ctrl-C ends the command, as everywhere else
        except BaseException as exc:  # any Exception, and a script's own `class Stop(BaseException)`
            line = _script_line(exc, filename)
            where = f"{display}:{line}" if line else display
            raise ScriptError(f"{where}: the script raised {type(exc).__name__}: {exc}") from exc
        finally:
            loading_flow.reset(loading)
    return module


def flows_in(namespace: types.ModuleType | dict[str, Any]) -> list[Flow]:
    """The distinct :class:`Flow` objects bound to names in a module, in definition order."""
    values = namespace.values() if isinstance(namespace, dict) else vars(namespace).values()
    seen: dict[int, Flow] = {}
    for value in values:
        if isinstance(value, Flow) and id(value) not in seen:
            seen[id(value)] = value
    return list(seen.values())


def extract_flows(file_path: str | None = None, file_contents: str | bytes | None = None,
                  extra_paths: Iterable[str] = (), display_name: str | None = None) -> list[Flow]:
    """Every flow a script defines at module level (*display_name* is how errors name the file)."""
    return flows_in(run_script(file_path, file_contents, extra_paths, display_name))


def extract_flow_from_file(file_path: str | None = None, file_contents: str | bytes | None = None,
                           flow_name: str | None = None) -> Flow:
    """The flow called *flow_name* from a script, or its only flow (never silently the first of several).

    As Prefect 1: both or neither of *file_path* / *file_contents* is a ValueError
    (:class:`~gitflows.errors.ConfigurationError`); contents that are not str or bytes a TypeError.
    """
    if file_path is not None and file_contents is not None:
        raise ConfigurationError("Provide either `file_path` or `file_contents` but not both.")
    if file_path is None and file_contents is None:
        raise ConfigurationError("Provide either `file_path` or `file_contents`.")
    if file_contents is not None and not isinstance(file_contents, str | bytes):
        raise WrongTypeError(f"`file_contents` must be string or bytes, got {type(file_contents).__name__}.")
    flows = extract_flows(file_path, file_contents)
    return select_flow(flows, flow_name, file_path or "<file_contents>")


def extract_flow_from_module(module_str: str, flow_name: str | None = None) -> Flow:
    """A flow from an importable module, as Prefect 1's ``extract_flow_from_module``.

    ``"pkg.flows"``: the flow named *flow_name*, or the module's only flow.
    ``"pkg.flows:flow"`` / ``"pkg.flows:Obj.attr"``: that attribute; a callable is called and must
    return a flow. A flow of another name than *flow_name* is a ValueError.
    """
    if not isinstance(module_str, str) or not module_str:
        raise WrongTypeError(f"module_str must be a non-empty str such as 'pkg.flows', got {module_str!r}")
    mod_name, has_attr, attr = module_str.partition(":")
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        if exc.name and mod_name.startswith(exc.name):
            raise ModuleMissingError(f"module {mod_name!r} cannot be imported: no module named {exc.name!r} "
                                     "(is it installed, or its folder on PYTHONPATH?)", name=exc.name) from None
        raise
    if has_attr:
        try:
            flow = operator.attrgetter(attr)(module)
        except AttributeError:
            raise FlowNotFoundError(f"Failed to find flow at {module_str!r}: module {mod_name!r} has no "
                                    f"attribute {attr!r}") from None
        if callable(flow) and not isinstance(flow, Flow):
            flow = flow()
        if not isinstance(flow, Flow):
            raise WrongTypeError(f"Object at {module_str!r} is a {type(flow).__name__}, not a gitflows Flow")
        if flow_name is not None and flow.name != flow_name:
            raise FlowNotFoundError(f"Flow at {module_str!r} is named {flow.name!r}, expected {flow_name!r}")
        return flow
    return select_flow(flows_in(module), flow_name, f"module {mod_name}")


# -- static inspection ---------------------------------------------------------------

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
        contents = _read(path)
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
