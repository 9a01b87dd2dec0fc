"""Flow scripts, executed: the one place gitflows runs a script's code.

:func:`extract_flow_from_file` runs a script with ``__file__`` set and its own
folder on ``sys.path`` (so sibling modules import), collects the flows it
defines, and restores ``sys.path`` and ``sys.modules`` afterwards. What can be
known without running it is :mod:`gitflows.inspection`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import linecache
import operator
import os
import sys
import traceback
import types
from collections.abc import Iterable, Iterator
from typing import Any

from gitflows.errors import (
    ConfigurationError,
    FlowNotFoundError,
    ModuleMissingError,
    ScriptError,
    WrongTypeError,
)
from gitflows.flow import Flow, loading_flow, select_flow
from gitflows.imports import too_deep
from gitflows.inspection import decode_script, read_script

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
        file_contents = read_script(file_path)
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


def describe_flows(file: str) -> tuple[str, list[dict[str, Any]], str | None]:
    """The flows *file* defines, for listing: ``("executed", rows, None)`` when the script runs here
    (exact storage settings, fingerprints), else, when its imports are not installed,
    ``("static", rows, why)`` from the syntax tree."""
    from gitflows.inspection import inspect_file

    rows: list[dict[str, Any]] = []
    try:
        for flow in extract_flows(file_path=file):
            storage = flow.storage.serialize() if flow.storage is not None else None
            rows.append({"name": flow.name, "tasks": len(flow.tasks), "storage": storage,
                         "fingerprint": flow.fingerprint()})
        return "executed", rows, None
    except ScriptError as exc:
        if not isinstance(exc.__cause__, ImportError):
            raise
        why = str(exc)
    for sf in inspect_file(file).flows:
        static_storage = {"type": sf.storage.type, **sf.storage.args} if sf.storage else None
        rows.append({"name": sf.name, "line": sf.lineno, "storage": static_storage})
    return "static", rows, why
