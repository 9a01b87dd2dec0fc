"""Loads every flow an image holds, to fail a build early: ``python -m gitflows.docker.healthcheck SPEC``.

SPEC is JSON: {"flows": {name: location}, "stored_as_script": bool, "python": "3.11"}. Prints one line
per flow; exits 1 naming the flow and the reason (missing module, unpickling error, file not in the
image). A Python version other than the one the flows were built with is a warning, as in Prefect 1
(``healthcheck: warning: ...``; the build passes it on as a ``UserWarning``).
"""

from __future__ import annotations

import json
import platform
import sys
import warnings
from collections.abc import Callable
from typing import Any


def system_check(python_version: str | None) -> None:
    """Warn (``UserWarning``) when this Python's major.minor is not *python_version*."""
    ours = ".".join(platform.python_version_tuple()[:2])
    if python_version and python_version != ours:
        warnings.warn(f"Python version mismatch: this image runs Python {ours}, but the flows were built with "
                      f"Python {python_version}; this could lead to unexpected errors in deployment",
                      UserWarning, stacklevel=2)


def check(spec: dict[str, Any], read: Callable[[str], bytes] | None = None) -> list[str]:
    """The problems found, one line each (empty when every flow loads). *read* gives a location's bytes
    (default: the file at that path)."""
    from gitflows.envelope import flow_from_bytes_pickle
    from gitflows.errors import GitflowsError
    from gitflows.flow import select_flow
    from gitflows.script import extract_flows

    read = read or (lambda p: open(p, "rb").read())
    problems = []
    system_check(spec.get("python"))
    for name, location in spec["flows"].items():
        try:
            data = read(location)
            if spec.get("stored_as_script"):
                select_flow(extract_flows(file_contents=data, display_name=location), name, location)
            else:
                flow = flow_from_bytes_pickle(data, where=location)
                if flow.name != name:
                    raise GitflowsError(f"{location} holds flow {flow.name!r}")
        except FileNotFoundError:
            problems.append(f"flow {name!r}: {location} is not in the image")
        except (GitflowsError, Exception) as exc:  # noqa: BLE001
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            if isinstance(cause, ModuleNotFoundError):
                problems.append(f"flow {name!r} at {location}: missing module {cause.name!r} "
                                "(add it to python_dependencies)")
            else:
                problems.append(f"flow {name!r} at {location}: {type(exc).__name__}: {exc}")
    return problems


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problems = check(spec)
    for warning in (w for w in caught if issubclass(w.category, UserWarning)):
        print(f"healthcheck: warning: {warning.message}", flush=True)
    for name in spec["flows"]:
        if not any(f"flow {name!r}" in p for p in problems):
            print(f"healthcheck: flow {name!r}: ok", flush=True)
    for problem in problems:
        print(f"healthcheck: {problem}", file=sys.stderr, flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
