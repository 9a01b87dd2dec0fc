"""``prefect.utilities.storage`` under its gitflows name: the helpers Prefect 1 storage code imports.

``from prefect.utilities.storage import extract_flow_from_file`` becomes
``from gitflows.utilities.storage import extract_flow_from_file``; the differences are in
docs/prefect1.md (several flows and no name is an error; pickles are verified envelopes).
"""

from __future__ import annotations

from typing import Any

from gitflows.envelope import flow_from_bytes_pickle, flow_to_bytes_pickle
from gitflows.errors import ConfigurationError, FlowStorageError
from gitflows.script import extract_flow_from_file, extract_flow_from_module

__all__ = ["extract_flow_from_file", "extract_flow_from_module", "flow_from_bytes_pickle", "flow_to_bytes_pickle",
           "get_flow_image", "FlowStorageError"]


def get_flow_image(flow: Any) -> str:
    """The image a flow runs in (Prefect 1, deprecated there in 0.15): its ``run_config.image`` when the
    run config has one, else its ``Docker`` storage's name; anything else is a ValueError."""
    run_config = getattr(flow, "run_config", None)
    if run_config is not None and hasattr(run_config, "image"):
        return str(run_config.image)
    storage = getattr(flow, "storage", None)
    if storage is None or getattr(storage, "type_name", None) != "Docker":
        raise ConfigurationError(
            f"Storage for flow run {flow.name} is not of type Docker and run_config has no `image` attribute "
            "in the metadata field.")
    return str(storage.name)
