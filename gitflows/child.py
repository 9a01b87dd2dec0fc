"""Runs one flow in a child process for the agent: ``python -m gitflows.child SPEC.json RESULT.json``.

SPEC: {"storage": <serialized storage>, "flow_name": str, "flow_location": str|None, "parameters": {...},
"watch_fd": int|None, "keepalive": float|None} (see :func:`_watch_agent`).
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


def _watch_agent(fd: int | None, keepalive: float | None) -> None:
    """Kill this process's whole group (the flow and everything it started) when the agent is gone.

    *fd* is the read end of a pipe only the agent can write to: end of file means the agent died. With
    *keepalive*, the agent writes a byte after each heartbeat the registry accepted; none for
    *keepalive* seconds means the agent stalled or lost the registry, and the run may be reaped and
    started elsewhere: end it here rather than let it run twice. (Without *fd*: poll the parent pid.)
    """
    import os
    import select
    import signal
    import threading
    import time

    def end(reason: str) -> None:
        try:  # the output pipe may have died with the agent (BrokenPipeError): say it where it can be said
            sys.stderr.write(f"gitflows: {reason}; ending the run and its processes\n")
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001 - nothing may keep this thread from the kill below
            pass
        try:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        finally:
            os._exit(137)

    def watch_pipe() -> None:
        assert fd is not None
        fed = time.monotonic()
        while True:
            wait = None if keepalive is None else max(0.0, fed + keepalive - time.monotonic())
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                end(f"the agent renewed no lease for {keepalive:g}s")
            if not os.read(fd, 4096):
                end("the agent is gone")
            fed = time.monotonic()

    def watch_parent() -> None:
        parent = os.getppid()
        while True:
            time.sleep(0.2)
            if os.getppid() != parent:
                end("the agent is gone")

    threading.Thread(target=watch_pipe if fd is not None else watch_parent, daemon=True,
                     name="gitflows-watch-agent").start()


def main(argv: list[str], watch_fd: int | None = None) -> int:
    """Run the spec's flow; *watch_fd* overrides the spec's (a warm worker's child holds the pipe under
    another number than the agent's)."""
    spec_path, result_path = argv[1], argv[2]
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    _watch_agent(watch_fd if watch_fd is not None else spec.get("watch_fd"), spec.get("keepalive"))
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
                    assert state is not None  # Flow.run returns None only while a script is being loaded
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
