"""``prefect.utilities.storage`` under its gitflows name: the helpers Prefect 1 storage code imports.

``from prefect.utilities.storage import extract_flow_from_file`` becomes
``from gitflows.utilities.storage import extract_flow_from_file``; the differences are in
docs/prefect1.md (several flows and no name is an error; pickles are verified envelopes).
"""

from __future__ import annotations

from gitflows.envelope import flow_from_bytes_pickle, flow_to_bytes_pickle
from gitflows.errors import FlowStorageError
from gitflows.script import extract_flow_from_file, extract_flow_from_module

__all__ = ["extract_flow_from_file", "extract_flow_from_module", "flow_from_bytes_pickle", "flow_to_bytes_pickle",
           "FlowStorageError"]
