"""Runs one flow in a child process for the agent: ``python -m gitflows.child SPEC.json RESULT.json``.

SPEC: {"storage": <serialized storage>, "flow_name": str, "flow_location": str|None, "parameters": {...}}.
The flow is loaded through its storage — pinned SHA, registered closure verified blob by blob, cache
first — the storage's secrets are resolved (gitflows.context), and it runs with stdout and stderr
scrubbed of every secret value.
RESULT: {"state": "success"|"failed", "error": str|None, "tasks": {name: state}}. Exit code 0 when
the flow succeeded, 1 when it failed, 2 when it could not be loaded.
"""

from __future__ import annotations

import json
import sys
import traceback


def _die_with_parent() -> None:
    """An agent killed mid-run must not leave its flow running on: another agent will retry the run."""
    import os
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.2)
            if os.getppid() != parent:
                os._exit(137)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str]) -> int:
    _die_with_parent()
    spec_path, result_path = argv[1], argv[2]
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    result: dict[str, object] = {"state": "failed", "error": None, "tasks": {}}
    code = 2
    from gitflows.redact import redact, redacted_output

    with redacted_output():
        try:
            from gitflows.context import use_secrets
            from gitflows.errors import GitflowsError
            from gitflows.storage import from_dict

            try:
                storage = from_dict(spec["storage"])
                flow = storage.get_flow(spec.get("flow_location"), flow_name=spec.get("flow_name"))
            except GitflowsError as exc:
                result["error"] = f"could not load the flow: {exc}"
            else:
                print(f"loaded flow {flow.name!r}", flush=True)
                try:
                    with use_secrets(storage.secrets):
                        state = flow.run(parameters=spec.get("parameters") or {})
                except GitflowsError as exc:
                    result["error"] = f"could not run the flow: {exc}"
                else:
                    for name, task_state in state.result.items():
                        print(f"  {task_state.state:<8} {name}"
                              + (f"  {task_state.message}" if task_state.message else ""), flush=True)
                    result["tasks"] = {name: s.state for name, s in state.result.items()}
                    if state.is_successful():
                        result["state"], code = "success", 0
                    else:
                        result["error"], code = state.message, 1
        except Exception as exc:  # noqa: BLE001 - report anything, the parent records it
            result["error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        if result["error"] is not None:
            result["error"] = redact(str(result["error"]))
    with open(result_path, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
