"""Run parameters as people type them (``--param n=5``, the web page's form): one parser for both.

``parse_value(key, raw)``: JSON when it parses (``5``, ``true``, ``[1, 2]``, ``{"a": 1}``), else the text
as a string. A value JSON reads but a flow cannot use — a number that is not finite (``1e999999``,
``Infinity``), an integer longer than Python converts, nesting deeper than Python's stack — is a
:class:`ParameterError` naming the parameter. ``check_against(structure, values)`` checks them against
a registered flow's parameters (unknown names, required ones missing).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from gitflows.errors import GitflowsError


class ParameterError(GitflowsError, ValueError):
    """A run parameter that cannot be used; ``key`` names it (None: the KEY=VALUE form itself)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def parse_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """``["n=5", "name=bob"]`` -> ``{"n": 5, "name": "bob"}``."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ParameterError(f"expected KEY=VALUE, got {clip(pair)!r}")
        params[key] = parse_value(key, raw)
    return params


def parse_value(key: str, raw: str) -> Any:
    def bad(why: str) -> ParameterError:
        return ParameterError(f"{clip(raw)!r} {why}", key=clip(key))

    not_finite: list[str] = []

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            not_finite.append(text)
        return value

    try:
        value = json.loads(raw, parse_float=number, parse_constant=number)
    except json.JSONDecodeError:
        return raw
    except RecursionError:
        raise bad(f"is nested too deeply (Python's limit is about {sys.getrecursionlimit()} levels)") from None
    except ValueError:  # int("9" * 100000): Python's integer string conversion limit
        digits = max((len(run) for run in re.findall(r"\d+", raw)), default=0)
        raise bad(f"is a number of {digits} digits, over Python's limit of {sys.get_int_max_str_digits()} "
                  "digits; quote it to pass a string") from None
    if not_finite:
        raise bad(f"holds {clip(not_finite[0])}, not a finite number; quote it to pass a string")
    return value


def check_against(structure: Mapping[str, Any] | None, values: Mapping[str, Any], flow: str) -> None:
    """Unknown parameters, and required ones not given, against a flow's recorded parameters (nothing to
    check when the version recorded none: registered before gitflows kept structures)."""
    if not structure:
        return
    declared = {p["name"]: p for p in structure.get("parameters", []) if isinstance(p, dict) and "name" in p}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        takes = ", ".join(sorted(declared)) or "no parameters"
        raise ParameterError(f"flow {flow!r} has no parameter {', '.join(map(repr, unknown))}; it takes: {takes}",
                             key=unknown[0])
    missing = sorted(n for n, p in declared.items() if p.get("required") and n not in values)
    if missing:
        raise ParameterError(f"flow {flow!r}: required parameter(s) not given: {', '.join(missing)}", key=missing[0])
