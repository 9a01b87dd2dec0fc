"""``Local``: pickles in a folder on this machine, or a script / module path.

Prefect 1's ``Local`` storage, with these fixes: a pickle is written through
the verified envelope (temp file, then rename) and its sha256 recorded
(``digests``, serialized), checked before unpickling; a location outside
``directory`` is refused; a missing file is an error naming the path; a
script holding several flows loads the one asked for.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any

from gitflows.envelope import check_recorded_digest, flow_to_bytes_pickle, restore_digests, sha256_of
from gitflows.errors import ConfigurationError, PathNotFoundError
from gitflows.flow import Flow, select_flow
from gitflows.naming import slugify, timestamp
from gitflows.script import extract_flow_from_module, extract_flows
from gitflows.storage.base import Storage

DEFAULT_DIRECTORY = os.path.join("~", ".gitflows", "flows")
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_MODULE_PATH = re.compile(rf"^{_DOTTED}(:{_DOTTED})?$")


def is_module_path(location: str) -> bool:
    """``pkg.mod`` or ``pkg.mod:attr`` (a Python import path) rather than a file path."""
    return bool(_MODULE_PATH.match(location)) and not location.endswith(".py") and os.sep not in location


def load_module_flow(module_str: str, flow_name: str | None) -> Flow:
    """Import *module_str* (``pkg.mod`` or ``pkg.mod:attr``) and return its flow called *flow_name* (or its only flow)."""
    return extract_flow_from_module(module_str, flow_name)


class Local(Storage):
    """``Local(directory=None, validate=True, path=None, stored_as_script=False, **kwargs)``.

    Default label: this machine's host name (``add_default_labels=False`` turns it off), so an
    agent on another machine does not pick up a flow whose pickle only exists here.
    """

    type_name = "Local"
    fields = ("directory", "validate", "path")
    own_location_field = "path"

    def __init__(self, directory: str | None = None, validate: bool = True, path: str | None = None,
                 stored_as_script: bool = False, **kwargs: Any) -> None:
        super().__init__(stored_as_script=stored_as_script, **kwargs)
        directory = directory or DEFAULT_DIRECTORY
        self.validate = bool(validate)
        if self.validate:  # as Prefect 1: made absolute and created; with validate=False kept exactly as given
            directory = os.path.abspath(os.path.expanduser(directory))
            os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.path = path
        self.digests: dict[str, str] = {}  # flow name -> sha256 of the pickle written by add_flow

    @property
    def default_labels(self) -> list[str]:
        return [socket.gethostname()]

    def _location_for(self, flow: Flow) -> str:
        if self.stored_as_script:
            if not self.path:
                raise ConfigurationError(
                    f"Local storage for flow {flow.name!r}: stored_as_script=True needs path= "
                    "(a script file or a module path such as 'pkg.flows')")
            if self.validate and not is_module_path(self.path) and not os.path.isfile(self.path):
                raise PathNotFoundError(f"flow script {self.path} does not exist (flow {flow.name!r})")
            return self.path
        if self.path:  # as Prefect 1: path= is where the pickle goes
            location = self.path
        else:
            location = os.path.join(self.directory, slugify(flow.name), f"{timestamp()}.gitflows-pickle")
        os.makedirs(os.path.dirname(os.path.abspath(location)), exist_ok=True)
        tmp = f"{location}.{os.getpid()}.tmp"
        data = flow_to_bytes_pickle(flow)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, location)
        self.digests[flow.name] = sha256_of(data)
        return location

    def _inside_directory(self, location: str) -> str:
        real = os.path.realpath(location)
        root = os.path.realpath(self.directory)
        if not real.startswith(root.rstrip(os.sep) + os.sep):
            raise ConfigurationError(f"location {location} is outside the storage directory {self.directory}; "
                                     "refusing to load it")
        return real

    def _load(self, name: str | None, location: str) -> Flow:
        if self.stored_as_script:
            if is_module_path(location):
                return load_module_flow(location, name)
            return select_flow(extract_flows(file_path=location), name, location)
        # a location recorded under flows must lie inside directory (flows may come from serialized data);
        # the storage's own path= is the user's explicit choice
        real = location if self.path and location == self.path else self._inside_directory(location)
        try:
            with open(real, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise PathNotFoundError(f"pickled flow {location} does not exist (was it built on another machine?)") \
                from None
        recorded = name or next((n for n, where in self.flows.items() if where == location), None)
        check_recorded_digest(data, self.digests.get(recorded) if recorded else None, f"pickled flow {location}")
        return self._from_bytes(data, name, location)

    def serialize(self) -> dict[str, Any]:
        data = super().serialize()
        data["digests"] = dict(self.digests)
        return data

    def restore(self, data: dict[str, Any]) -> None:
        self.digests = restore_digests(data, self.type_name)
