"""Storages: where flows live. One module per backend, one dict that lists them all.

``from_dict`` rebuilds any storage from ``serialize()`` output. Backends are
imported only when used, so ``import gitflows`` never loads boto3, PyGithub,
dulwich or a cloud SDK.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from gitflows.errors import ConfigurationError
from gitflows.storage.base import Storage
from gitflows.storage.fieldtypes import check_fields

#: serialized ``type`` -> "module:Class". Adding a backend adds one line here.
STORAGE_TYPES: dict[str, str] = {
    "Local": "gitflows.storage.local:Local",
    "Module": "gitflows.storage.module:Module",
    "GitHub": "gitflows.storage.github:GitHub",
    "GitLab": "gitflows.storage.gitlab:GitLab",
    "Bitbucket": "gitflows.storage.bitbucket:Bitbucket",
    "CodeCommit": "gitflows.storage.codecommit:CodeCommit",
    "Git": "gitflows.storage.git:Git",
    "S3": "gitflows.storage.s3:S3",
    "GCS": "gitflows.storage.gcs:GCS",
    "Azure": "gitflows.storage.azure:Azure",
    "Webhook": "gitflows.storage.webhook:Webhook",
    "Docker": "gitflows.storage.docker:Docker",
}

_BASE_ARGS = ("labels", "secrets", "add_default_labels", "stored_as_script", "result")


def storage_class(type_name: str) -> type[Storage]:
    """The class registered for a serialized ``type`` name."""
    try:
        target = STORAGE_TYPES[type_name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(STORAGE_TYPES))
        raise ConfigurationError(f"unknown storage type {type_name!r}; known types: {known}") from None
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    cls: type[Storage] = getattr(module, class_name)
    return cls


def from_dict(data: dict[str, Any]) -> Storage:
    """Rebuild a storage from its serialized form (``Storage.serialize()``)."""
    if not isinstance(data, dict):
        raise ConfigurationError(f"a serialized storage is a dict, got {type(data).__name__}")
    if "type" not in data:
        raise ConfigurationError(f"serialized storage has no 'type' key (keys: {', '.join(sorted(data)) or 'none'})")
    cls = storage_class(data["type"])
    check_fields(data["type"], cls, data)
    sig = inspect.signature(cls.__init__)
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    required = [name for name, p in sig.parameters.items()
                if name != "self" and p.default is inspect.Parameter.empty
                and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    missing = [name for name in required if name not in data]
    if missing:
        raise ConfigurationError(f"serialized {data['type']} storage lacks required field(s): {', '.join(missing)}")
    kwargs = {name: data[name] for name in cls.fields if name in data}
    for name in _BASE_ARGS:
        if name in data and (name in sig.parameters or takes_kwargs):
            kwargs[name] = data[name]
    try:
        storage = cls(**kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"serialized {data['type']} storage is invalid: {exc}") from None
    flows = data.get("flows") or {}
    if not isinstance(flows, dict):
        raise ConfigurationError(f"serialized {data['type']} storage: 'flows' must be a dict of name -> location")
    storage.flows = {str(k): str(v) for k, v in flows.items()}
    storage.restore(data)
    return storage


def get_default_storage_class() -> type[Storage]:
    """The storage class used when a flow has none: ``Local``, or the one ``GITFLOWS_DEFAULT_STORAGE`` names
    (``"Docker"``, ``"gitflows.storage.Docker"`` or ``"gitflows.storage.docker:Docker"``), as Prefect 1's
    ``flows.defaults.storage.default_class``. A name that cannot be loaded warns and gives ``Local``."""
    import os
    import warnings

    value = os.environ.get("GITFLOWS_DEFAULT_STORAGE", "").strip()
    if not value:
        return storage_class("Local")
    name = value.rpartition(":")[2] if ":" in value else value.rpartition(".")[2]
    module = value.partition(":")[0] if ":" in value else value.rpartition(".")[0]
    try:
        if not module or module == "gitflows.storage":
            return storage_class(name)
        cls = getattr(importlib.import_module(module), name)
        if not (isinstance(cls, type) and issubclass(cls, Storage)):
            raise TypeError(f"{value} is not a Storage class")
        return cls
    except (ConfigurationError, ImportError, AttributeError, TypeError, ValueError) as exc:
        warnings.warn(f"GITFLOWS_DEFAULT_STORAGE={value!r} could not be loaded ({exc}); using "
                      "gitflows.storage.Local instead", UserWarning, stacklevel=2)
        return storage_class("Local")


def __getattr__(name: str) -> Any:
    """``from gitflows.storage import Local`` imports that backend on first use."""
    if name in STORAGE_TYPES:
        return storage_class(name)
    raise AttributeError(f"module 'gitflows.storage' has no attribute {name!r}")


__all__ = ["Storage", "STORAGE_TYPES", "from_dict", "get_default_storage_class", "storage_class", *STORAGE_TYPES]
