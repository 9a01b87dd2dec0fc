"""gitflows: store flows where your code lives, load exactly the registered version back.

Importing this package is cheap: backends (PyGithub, boto3, dulwich, cloud SDKs)
are imported only by the storage that needs them.
"""

from __future__ import annotations

from gitflows import context, errors
from gitflows.envelope import flow_from_bytes_pickle, flow_to_bytes_pickle
from gitflows.flow import Flow, FlowState, Parameter, Task, TaskState, task, unmapped
from gitflows.script import extract_flow_from_file, extract_flow_from_module
from gitflows.version import __version__

__all__ = [
    "Flow", "FlowState", "Parameter", "Task", "TaskState", "task", "unmapped", "context", "errors",
    "extract_flow_from_file", "extract_flow_from_module", "flow_from_bytes_pickle", "flow_to_bytes_pickle", "__version__",
]
