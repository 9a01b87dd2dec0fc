"""``Module``: a flow importable from an installed Python module (``Module("pkg.flows")``)."""

from __future__ import annotations

from typing import Any

from gitflows.errors import ConfigurationError
from gitflows.flow import Flow
from gitflows.storage.base import Storage
from gitflows.storage.local import is_module_path, load_module_flow


class Module(Storage):
    """``Module(module, **kwargs)``: the flow is found by importing *module* where it runs."""

    type_name = "Module"
    fields = ("module",)
    own_location_field = "module"

    def __init__(self, module: str, **kwargs: Any) -> None:
        if not isinstance(module, str) or not is_module_path(module):
            raise ConfigurationError(f"Module storage needs a module import path such as 'pkg.flows', got {module!r}")
        kwargs["stored_as_script"] = True
        super().__init__(**kwargs)
        self.module = module

    def _location_for(self, flow: Flow) -> str:
        return self.module

    def _load(self, name: str | None, location: str) -> Flow:
        if not is_module_path(location):
            raise ConfigurationError(f"Module storage location {location!r} is not a module import path")
        return load_module_flow(location, name)
