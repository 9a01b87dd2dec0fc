"""The Storage base class: the Prefect 1 storage surface every backend shares.

A storage knows where flows live. ``add_flow`` records a flow and returns its
*location* (a path, key, module, or script path); ``build`` makes the stored
form real (uploads, pins a ref); ``get_flow`` loads a flow back from a
location; ``serialize`` / :func:`gitflows.storage.from_dict` carry a storage
between machines. A storage *names* secrets; it never holds their values.

Subclasses list their constructor arguments in ``fields``: ``serialize``
writes those attributes, ``from_dict`` passes them back to the constructor.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import Iterable
from typing import Any, ClassVar

from gitflows.errors import ConfigurationError, FlowNotFoundError, WrongTypeError
from gitflows.flow import Flow
from gitflows.redact import get_logger, redact
from gitflows.version import __version__


class Storage:
    """Base class. ``Storage(result=None, secrets=None, labels=None, add_default_labels=None, stored_as_script=False)``.

    ``get_flow(flow_name)`` (Prefect >= 0.14.4) and ``get_flow(location)`` (the 2020
    ``prefect.environments.storage`` API) both work, without ambiguity: a key of ``flows`` is a
    name, a value of ``flows`` is a location. A storage that recorded no flows (built elsewhere,
    ``Module``, ``Local`` in script mode) takes the argument as a flow *name* and picks that flow
    out of its own path / key / module. A name is never used as a path, key or module.
    """

    #: name used in the serialized ``"type"`` key and by :func:`from_dict`
    type_name: ClassVar[str] = "Storage"
    #: constructor arguments that ``serialize`` records and ``from_dict`` passes back
    fields: ClassVar[tuple[str, ...]] = ()
    #: the attribute naming where this storage's own script / object / module is (``path``, ``key``, ...)
    own_location_field: ClassVar[str | None] = None

    def __init__(self, result: Any = None, secrets: Iterable[str] | None = None,
                 labels: Iterable[str] | None = None, add_default_labels: bool | None = None,
                 stored_as_script: bool = False) -> None:
        if type(self) is Storage:
            raise TypeError("Storage is an abstract base class; use one of its backends (Local, S3, GitHub, ...)")
        if isinstance(secrets, str) or isinstance(labels, str):
            raise ConfigurationError("secrets and labels are lists of names, not a single string")
        self.result = result
        self.secrets: list[str] = list(secrets or [])
        self._labels: list[str] = list(labels or [])
        self.add_default_labels = default_labels_setting() if add_default_labels is None else add_default_labels
        self.stored_as_script = bool(stored_as_script)
        self.flows: dict[str, str] = {}
        self._flows: dict[str, Flow] = {}

    # -- Prefect 1 object model -----------------------------------------------------
    @property
    def name(self) -> str:
        """Name of the storage object (its class name; ``Docker`` overrides it with the image name)."""
        return type(self).__name__

    @property
    def logger(self) -> logging.Logger:
        """A logger named after the storage class, whose records pass through the redactor."""
        return get_logger(f"gitflows.storage.{type(self).__name__}")

    @property
    def default_labels(self) -> list[str]:
        """Labels this kind of storage adds when ``add_default_labels`` is on (``Local``: the host name)."""
        return []

    @property
    def labels(self) -> list[str]:
        """The user's labels, plus the default labels when ``add_default_labels`` is on (no duplicates)."""
        labels = list(self._labels)
        if self.add_default_labels:
            labels += [lbl for lbl in self.default_labels if lbl not in labels]
        return labels

    # -- flows --------------------------------------------------------------------
    def add_flow(self, flow: Flow) -> str:
        """Record *flow*; return where it will live. Two flows of one name are an error (a ValueError)."""
        if not isinstance(flow, Flow):
            raise WrongTypeError(f"{self.type_name}.add_flow expects a Flow, got {type(flow).__name__}")
        if flow.name in self.flows:
            raise ConfigurationError(
                f'Name conflict: Flow with the name "{flow.name}" is already present in this storage '
                f"({self.type_name}, at {self.flows[flow.name]}); flow names must be unique in one storage")
        location = self._location_for(flow)
        self.flows[flow.name] = location
        self._flows[flow.name] = flow
        return location

    def _location_for(self, flow: Flow) -> str:
        raise NotImplementedError

    def __contains__(self, obj: object) -> bool:
        """A flow name (Prefect 1: only strings), or a Flow whose name is recorded."""
        if isinstance(obj, Flow):
            return obj.name in self.flows
        return isinstance(obj, str) and obj in self.flows

    @property
    def own_location(self) -> str | None:
        """Where this storage itself points (its path / key / blob_name / module), if anywhere."""
        return getattr(self, self.own_location_field) if self.own_location_field else None

    def _locate(self, name_or_location: str | None = None, flow_name: str | None = None) -> tuple[str | None, str]:
        """(flow name, location) for a ``get_flow`` call. The rules are in the class docstring."""
        arg = name_or_location
        if arg is not None and not isinstance(arg, str):
            raise WrongTypeError(f"{self.type_name}.get_flow expects a flow name (str), got {type(arg).__name__}")
        if flow_name is not None and not isinstance(flow_name, str):
            raise WrongTypeError(f"{self.type_name}.get_flow: flow_name must be a str, got {type(flow_name).__name__}")
        if arg is None:
            return self._locate_without_argument(flow_name)
        return self._locate_argument(arg, flow_name)

    def _locate_argument(self, arg: str, flow_name: str | None) -> tuple[str | None, str]:
        """``_locate`` given a flow name or a location (*arg*), and maybe *flow_name* too."""
        if arg in self.flows:  # a name
            if flow_name is not None and flow_name != arg:
                raise ConfigurationError(f"{self.type_name}.get_flow({arg!r}, flow_name={flow_name!r}): "
                                         "two different flow names; give one")
            return arg, self.flows[arg]
        if arg in self.flows.values():  # a location (2020 API)
            return self._locate_recorded_location(arg, flow_name)
        if self.flows:
            raise FlowNotFoundError(self._missing(arg))
        if flow_name is not None:
            if arg != self.own_location:
                raise ConfigurationError(f"{self.type_name}.get_flow({arg!r}, flow_name={flow_name!r}): {arg!r} is "
                                         "not a location this storage recorded")
            return flow_name, arg
        # nothing recorded: a flow name picked out of the storage's own location
        if arg == self.own_location:
            return None, arg
        return arg, self._own_location_or_error(arg)

    def _locate_recorded_location(self, location: str, flow_name: str | None) -> tuple[str, str]:
        """``_locate`` given a location some flow was recorded at: the flow there (*flow_name* or the only one)."""
        names = [n for n, loc in self.flows.items() if loc == location]
        if flow_name is not None:
            if flow_name not in names:
                raise FlowNotFoundError(f"{self.type_name} storage: {location} holds {_names(names)}, "
                                        f"not {flow_name!r}")
            return flow_name, location
        if len(names) > 1:
            raise FlowNotFoundError(f"{self.type_name} storage: {location} holds {len(names)} flows "
                                    f"({_names(names)}); say which with flow_name=")
        return names[0], location

    def _locate_without_argument(self, flow_name: str | None) -> tuple[str | None, str]:
        """``_locate`` with no name or location: the named flow, the only flow, or the storage's own location."""
        if flow_name is not None:
            if self.flows and flow_name not in self.flows:
                raise FlowNotFoundError(self._missing(flow_name))
            return flow_name, self.flows.get(flow_name) or self._own_location_or_error(flow_name)
        if len(self.flows) == 1:
            return next(iter(self.flows.items()))
        if len(self.flows) > 1:
            raise FlowNotFoundError(
                f"{self.type_name} storage holds {len(self.flows)} flows ({_names(self.flows)}); "
                "say which: get_flow(flow_name)")
        return None, self._own_location_or_error(None)

    def _own_location_or_error(self, flow_name: str | None) -> str:
        location = self.own_location
        if location:
            return location
        field = self.own_location_field
        where = f"no {field}" if field else "no location"
        fix = f"set {field}=" if field else "pass the flow's location"
        if flow_name is not None:
            raise FlowNotFoundError(f"flow {flow_name!r} is not in this {self.type_name} storage: it holds no flows "
                                    f"and has {where} to load it from; add_flow(flow) first or {fix}")
        raise FlowNotFoundError(f"{self.type_name} storage holds no flows and has {where}; "
                                "add_flow(flow) first or pass the flow's name")

    def _missing(self, flow_name: str) -> str:
        return (f"Flow is not contained in this Storage: flow {flow_name!r} is not in this {self.type_name} storage; "
                f"flows it holds: {_names(self.flows) or 'none'}")

    def _from_bytes(self, data: bytes, name: str | None, where: str) -> Flow:
        """A flow from stored bytes: the script itself, or a verified pickle envelope (whose flow must be *name*)."""
        from gitflows.envelope import flow_from_bytes_pickle
        from gitflows.flow import select_flow
        from gitflows.script import extract_flows

        if self.stored_as_script:
            return select_flow(extract_flows(file_contents=data, display_name=where), name, where)
        flow = flow_from_bytes_pickle(data, where=where)
        if name and flow.name != name:
            raise FlowNotFoundError(f"{where} holds flow {flow.name!r}, not {name!r}")
        return flow

    def get_flow(self, name_or_location: str | None = None, flow_name: str | None = None, *,
                 flow_location: str | None = None, location: str | None = None, **options: Any) -> Flow:
        """Load a flow back.

        ``get_flow("etl")`` / ``get_flow(flow_name="etl")`` (Prefect 1.4.1) load the flow named
        ``etl``; ``get_flow(storage.flows["etl"])`` / ``get_flow(flow_location=...)`` (the 2020 API)
        load the flow at that recorded location; ``get_flow()`` loads the only flow, or the flow at
        the storage's own path / key / module. Raises :class:`~gitflows.errors.FlowNotFoundError`
        (a ValueError) for a flow this storage does not hold. Backend options of the 2020 API
        (``ref=`` on the repository storages) pass through to the backend.
        """
        given = [v for v in (name_or_location, flow_location, location) if v is not None]
        if len(given) > 1:
            raise ConfigurationError(f"{self.type_name}.get_flow: give one of a flow name, flow_location= or "
                                     "location=, not several")
        if options:
            accepted = inspect.signature(self._load).parameters
            unknown = sorted(k for k in options if k not in accepted or k in ("flow_name", "location"))
            if unknown:
                raise WrongTypeError(f"{self.type_name}.get_flow() got unexpected keyword argument(s): "
                                     f"{', '.join(unknown)}")
        name, where = self._locate(given[0] if given else None, flow_name)
        return self._load(name, where, **options)

    def _load(self, flow_name: str | None, location: str) -> Flow:
        """Load the flow *flow_name* (None: the only one there) from *location*. Backends implement this."""
        raise NotImplementedError

    def run_basic_healthchecks(self) -> None:
        """Check the added flows before they are stored: a graph without cycles; for pickles, picklable."""
        import cloudpickle

        for name, flow in self._flows.items():
            flow.sorted_tasks()  # raises FlowRunError (a ValueError) naming the tasks of a cycle
            if not self.stored_as_script:
                try:
                    cloudpickle.dumps(flow)
                except Exception as exc:
                    raise ConfigurationError(f"flow {name!r} cannot be pickled for {self.type_name} storage: "
                                             f"{type(exc).__name__}: {exc}") from None

    def get_env_runner(self, flow_location: str, parameters: dict[str, Any] | None = None) -> Any:
        """A runner for the flow at *flow_location* (a location, or a flow's name; Prefect's 2020 API):
        ``runner.run(env)`` runs it in a child process with the environment variables *env* added, with
        *parameters*, and returns a ``RunResult``. Agents run every flow this way."""
        from gitflows.storage.runner import ChildProcessRunner

        name, location = self._locate(flow_location)
        return ChildProcessRunner(self, location, name, parameters)

    def build(self) -> Storage:
        """Make the stored form real (upload, pin). Returns the storage itself."""
        self.run_basic_healthchecks()
        return self

    # -- serialization ----------------------------------------------------------------
    def serialize(self) -> dict[str, Any]:
        """A JSON-able dict with a ``"type"`` key; never contains a secret value."""
        data: dict[str, Any] = {"type": self.type_name, "__version__": __version__}
        for name in self.fields:
            data[name] = getattr(self, name)
        data["flows"] = dict(self.flows)
        data["labels"] = list(self._labels)
        data["secrets"] = list(self.secrets)
        data["add_default_labels"] = self.add_default_labels
        data["stored_as_script"] = self.stored_as_script
        if self.result is not None:
            data["result"] = self.result if _jsonable(self.result) else repr(self.result)
        text = json.dumps(data, default=str)
        redacted: dict[str, Any] = json.loads(redact(text))  # a JSON object: *data* dumped and read back
        return redacted

    def restore(self, data: dict[str, Any]) -> None:
        """Take back state that ``serialize`` wrote beyond the constructor arguments (pins, digests)."""

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.fields if getattr(self, name) is not None)
        return redact(f"{self.type_name}({args})")


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def default_labels_setting() -> bool:
    """``add_default_labels`` when not given: on (Prefect 1's config default).

    ``GITFLOWS_ADD_DEFAULT_LABELS=false`` turns it off, as Prefect's
    ``flows.defaults.storage.add_default_labels`` setting did."""
    value = os.environ.get("GITFLOWS_ADD_DEFAULT_LABELS", "true").strip().lower()
    return value not in ("0", "false", "no", "off", "")
