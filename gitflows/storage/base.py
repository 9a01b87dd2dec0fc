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

import json
from collections.abc import Iterable
from typing import Any, ClassVar

from gitflows.errors import ConfigurationError, FlowNotFoundError
from gitflows.flow import Flow
from gitflows.redact import redact
from gitflows.version import __version__


class Storage:
    """Base class. ``Storage(result=None, secrets=None, labels=None, add_default_labels=None, stored_as_script=False)``."""

    #: name used in the serialized ``"type"`` key and by :func:`from_dict`
    type_name: ClassVar[str] = "Storage"
    #: constructor arguments that ``serialize`` records and ``from_dict`` passes back
    fields: ClassVar[tuple[str, ...]] = ()
    #: whether default labels are added when ``add_default_labels`` is None
    default_labels_on: ClassVar[bool] = False

    def __init__(self, result: Any = None, secrets: Iterable[str] | None = None,
                 labels: Iterable[str] | None = None, add_default_labels: bool | None = None,
                 stored_as_script: bool = False) -> None:
        if isinstance(secrets, str) or isinstance(labels, str):
            raise ConfigurationError("secrets and labels are lists of names, not a single string")
        self.result = result
        self.secrets: list[str] = list(secrets or [])
        self._labels: list[str] = list(labels or [])
        self.add_default_labels = self.default_labels_on if add_default_labels is None else bool(add_default_labels)
        self.stored_as_script = bool(stored_as_script)
        self.flows: dict[str, str] = {}
        self._flows: dict[str, Flow] = {}

    # -- labels -------------------------------------------------------------------
    def default_labels(self) -> list[str]:
        """Labels this kind of storage adds by default (``Local``: the host name)."""
        return []

    @property
    def labels(self) -> list[str]:
        labels = list(self._labels)
        if self.add_default_labels:
            labels += [lbl for lbl in self.default_labels() if lbl not in labels]
        return labels

    # -- flows --------------------------------------------------------------------
    def add_flow(self, flow: Flow) -> str:
        """Record *flow*; return where it will live. Two flows of one name are an error."""
        if not isinstance(flow, Flow):
            raise ConfigurationError(f"{self.type_name}.add_flow expects a Flow, got {type(flow).__name__}")
        if flow.name in self.flows:
            raise ConfigurationError(
                f"{self.type_name} storage already holds a flow named {flow.name!r} "
                f"(at {self.flows[flow.name]}); flow names must be unique in one storage")
        location = self._location_for(flow)
        self.flows[flow.name] = location
        self._flows[flow.name] = flow
        return location

    def _location_for(self, flow: Flow) -> str:
        raise NotImplementedError

    def __contains__(self, obj: object) -> bool:
        if isinstance(obj, Flow):
            return obj.name in self.flows
        return isinstance(obj, str) and obj in self.flows

    def flow_name_for(self, location: str | None, flow_name: str | None = None) -> str | None:
        """Which flow a ``get_flow`` call means: by name, by location, or the only one."""
        if flow_name is not None:
            if self.flows and flow_name not in self.flows and location is None:
                raise FlowNotFoundError(self._missing(flow_name))
            return flow_name
        if location is None:
            if len(self.flows) == 1:
                return next(iter(self.flows))
            if not self.flows:
                raise FlowNotFoundError(f"{self.type_name} storage holds no flows; pass a location or add a flow")
            raise FlowNotFoundError(
                f"{self.type_name} storage holds {len(self.flows)} flows "
                f"({', '.join(repr(n) for n in self.flows)}); say which with flow_name=")
        names = [n for n, loc in self.flows.items() if loc == location]
        if len(names) > 1:
            raise FlowNotFoundError(
                f"{location} holds {len(names)} flows ({', '.join(repr(n) for n in names)}); "
                "say which with flow_name=")
        return names[0] if names else None

    def _missing(self, flow_name: str) -> str:
        found = ", ".join(repr(n) for n in self.flows) or "none"
        return f"flow {flow_name!r} is not in this {self.type_name} storage; flows it holds: {found}"

    def _locate(self, location: str | None, flow_name: str | None) -> tuple[str | None, str]:
        """(flow name, location) for a ``get_flow`` call; a location nobody recorded is an error naming the flow."""
        name = self.flow_name_for(location, flow_name)
        if location is None:
            location = self.flows.get(name) if name else None
        if location is None:
            from gitflows.errors import PathNotFoundError

            raise PathNotFoundError(self._missing(str(name)))
        return name, location

    def _from_bytes(self, data: bytes, name: str | None, where: str) -> Flow:
        """A flow from stored bytes: the script itself, or a verified pickle envelope."""
        from gitflows.envelope import flow_from_bytes_pickle
        from gitflows.flow import select_flow
        from gitflows.script import extract_flows

        if self.stored_as_script:
            return select_flow(extract_flows(file_contents=data, display_name=where), name, where)
        return flow_from_bytes_pickle(data, where=where)

    def get_flow(self, location: str | None = None, flow_name: str | None = None) -> Flow:
        """Load a flow back from *location* (or the location of *flow_name*, or of the only flow)."""
        raise NotImplementedError

    def build(self) -> Storage:
        """Make the stored form real (upload, pin). Returns the storage itself."""
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
        return json.loads(redact(text))

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
