"""Check a serialized storage's fields against its constructor's annotations, before anything is built.

One function serves every backend: the expected type of each field is read from the ``__init__``
annotations along the class's MRO (``str | None``, ``bool``, ``dict[str, Any] | None``,
``list[str] | None``, ...). A field whose annotation is not understood is not checked.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from typing import Any

from gitflows.errors import ConfigurationError

#: Fields ``serialize`` writes beyond the constructor arguments, with the type ``restore`` expects.
EXTRA_FIELDS: dict[str, Any] = {
    "flows": dict[str, str] | None,
    "digests": dict[str, str] | None,
    "sha": str | None,
    "image_digest": str | None,
    "__version__": str | None,
}

_SEQUENCES = (list, tuple, set, frozenset, collections.abc.Iterable, collections.abc.Sequence,
              collections.abc.Collection, collections.abc.Set)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
_SCALARS: dict[type, str] = {str: "str", bool: "bool (true/false)", int: "int", float: "number"}


def field_types(cls: type) -> dict[str, Any]:
    """Each constructor argument of *cls* (and its bases) -> its annotation; the leaf class wins."""
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        try:
            found = typing.get_type_hints(init)
        except Exception:  # an annotation naming something not importable here: leave those fields unchecked
            continue
        found.pop("return", None)
        params = inspect.signature(init).parameters
        hints.update({name: hint for name, hint in found.items() if name in params
                      and params[name].kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)})
    return hints


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return "anything"
    if hint is type(None) or hint is None:
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin in _MAPPINGS:
        key, value = args if len(args) == 2 else (Any, Any)
        return f"a dict of {_describe(key)} -> {_describe(value)}"
    if origin in _SEQUENCES or hint in _SEQUENCES:
        item = args[0] if args else Any
        return f"a list of {_describe(item)}"
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in args)
    if isinstance(hint, type):
        return _SCALARS.get(hint, hint.__name__)
    return str(hint)


def _found(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def mismatch(value: Any, hint: Any) -> str | None:
    """None when *value* (JSON-shaped) fits *hint*; else a short description of what was found instead."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, typing.TypeVar):
        return None
    if hint is type(None) or hint is None:
        return None if value is None else _found(value)
    if origin in (typing.Union, types.UnionType):
        return _union_mismatch(value, args)
    if origin is typing.Literal:
        return None if value in args else repr(value)[:40]
    if origin in _MAPPINGS or hint in _MAPPINGS:
        return _mapping_mismatch(value, args)
    if origin in _SEQUENCES or hint in _SEQUENCES:
        return _sequence_mismatch(value, args)
    return _scalar_mismatch(value, hint)


def _union_mismatch(value: Any, members: tuple[Any, ...]) -> str | None:
    found = [mismatch(value, a) for a in members]
    if any(f is None for f in found):
        return None
    # A value of the right container holding a wrong item: say which item, not just the container.
    return next((f for f in found if f and f != _found(value)), _found(value))


def _mapping_mismatch(value: Any, args: tuple[Any, ...]) -> str | None:
    if not isinstance(value, dict):
        return _found(value)
    key, item = args if len(args) == 2 else (Any, Any)
    for k, v in value.items():
        for part, part_hint, what in ((k, key, "key"), (v, item, f"value at {str(k)[:40]!r}")):
            bad = mismatch(part, part_hint)
            if bad is not None:
                return f"a dict whose {what} is {bad}"
    return None


def _sequence_mismatch(value: Any, args: tuple[Any, ...]) -> str | None:
    if not isinstance(value, list | tuple):
        return _found(value)
    item = args[0] if args else Any
    for i, element in enumerate(value):
        bad = mismatch(element, item)
        if bad is not None:
            return f"a list whose item {i} is {bad}"
    return None


def _scalar_mismatch(value: Any, hint: Any) -> str | None:
    if hint is bool:
        return None if isinstance(value, bool) else _found(value)
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else _found(value)
    if hint is float:
        return None if isinstance(value, int | float) and not isinstance(value, bool) else _found(value)
    if hint is str:
        return None if isinstance(value, str) else _found(value)
    return None  # a class JSON cannot hold (a Result, a TLSConfig): not checked here


def check_fields(type_name: str, cls: type, data: dict[str, Any]) -> None:
    """Raise a one-line ConfigurationError naming the first field of *data* whose type does not fit."""
    expected = {**EXTRA_FIELDS, **field_types(cls)}
    for name, value in data.items():
        if name == "type" or name not in expected:
            continue
        bad = mismatch(value, expected[name])
        if bad is not None:
            raise ConfigurationError(f"serialized {type_name} storage: field {name!r} must be "
                                     f"{_describe(expected[name])}, got {bad}")
