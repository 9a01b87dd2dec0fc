"""Running a flow on an executor: ``Flow.run`` hands the work here.

The runner walks the graph as results arrive. Whenever every upstream task of a task has finished, it
is decided at once — skipped (an upstream did not succeed), a parameter (its value), or submitted to
the executor — so independent tasks run side by side on a parallel executor. A mapped task
(``task.map``) becomes one child per item of its mapped inputs; children are submitted in chunks
(a few per executor slot: per-call overhead, not the work, dominates tiny tasks), and each child has
its own state, retries and result. A child whose mapped upstream child failed is skipped; a normal
task reading a mapped task's result (a reduce) gets the list of the children's results, and is
skipped when any child did not succeed (Prefect 1's ``all_successful`` over the children).

Calls that leave this process (a Dask cluster, Dask's ``processes`` scheduler) travel as one
cloudpickle: the task objects with their functions, and — by value — the modules of the flow's own
code (its script and sibling modules, which the workers do not have), so a worker needs gitflows
and the flow's installed dependencies, never the repository. A result that cannot be pickled back
fails that task with a message naming it.
"""

from __future__ import annotations

import math
import os
import sys
import sysconfig
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitflows.errors import FlowRunError
from gitflows.redact import get_logger

if TYPE_CHECKING:
    from gitflows.executors import Executor, Handle
    from gitflows.flow import Flow, Task, TaskState

log = get_logger(__name__)
CHUNKS_PER_SLOT = 4


@dataclass
class Call:
    """One task run (or one mapped child) with its inputs resolved."""

    task: Task
    slug: str
    kwargs: dict[str, Any]
    map_index: int | None = None


def run_task(call: Call, remote: bool = False) -> TaskState:
    """Run *call*'s task, retrying as it asks. *remote*: the state will be pickled back (an exception that
    does not pickle is dropped, a result that does not pickle fails the task)."""
    from gitflows.flow import TaskState

    t, where = call.task, call.slug if call.map_index is None else f"{call.slug}[{call.map_index}]"
    attempts = 0
    while True:
        attempts += 1
        try:
            result = t.run(**call.kwargs)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            if attempts <= t.max_retries:
                log.warning("task %s failed (attempt %d of %d), retrying in %.2fs: %s",
                            where, attempts, t.max_retries + 1, t.retry_delay, message)
                time.sleep(t.retry_delay)
                continue
            log.error("task %s failed after %d attempt(s): %s", where, attempts, message)
            log.debug("task %s traceback:\n%s", where, traceback.format_exc())
            return TaskState("Failed", message=message, attempts=attempts, exception=None if remote else exc)
        if remote:
            problem = _unpicklable(result)
            if problem:
                message = (f"task {where!r} returned a value that cannot be pickled to send it back from the "
                           f"worker ({problem}); return plain data (numbers, strings, lists, dicts, dataframes)")
                log.error("%s", message)
                return TaskState("Failed", message=message, attempts=attempts)
        log.info("task %s succeeded (attempt %d)", where, attempts)
        return TaskState("Success", result=result, attempts=attempts)


def _unpicklable(value: Any) -> str | None:
    import cloudpickle

    try:
        cloudpickle.dumps(value)
    except Exception as exc:  # noqa: BLE001 - any pickling failure, named
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


def run_calls(calls: list[Call]) -> list[TaskState]:
    """Run a chunk of calls here (the local executors)."""
    return [run_task(call) for call in calls]


def run_pickled(payload: bytes) -> bytes:
    """Run a cloudpickled chunk of calls on a worker; the states come back cloudpickled, each naming the
    worker that ran it."""
    import cloudpickle

    calls: list[Call] = cloudpickle.loads(payload)
    worker = _worker_address()
    states = [run_task(call, remote=True) for call in calls]
    for state in states:
        state.worker = worker
    return bytes(cloudpickle.dumps(states))


def _worker_address() -> str | None:
    if "distributed" not in sys.modules:
        return None
    try:
        return str(sys.modules["distributed"].get_worker().address)
    except (ValueError, AttributeError):  # not inside a distributed worker (Dask's processes scheduler)
        return f"pid {os.getpid()}"


def _library_roots() -> list[str]:
    import gitflows

    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.add(os.path.dirname(os.path.abspath(gitflows.__file__)))  # an editable install lives outside site-packages
    return [os.path.realpath(r) + os.sep for r in roots]


@contextmanager
def flow_code_by_value() -> Iterator[None]:
    """While calls are pickled: modules of the flow's own code (loaded from files outside the standard library,
    installed packages and gitflows) are pickled by value, so workers need not have them."""
    import cloudpickle

    roots = _library_roots()
    registered = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py") or name == "__main__":
            continue
        real = os.path.realpath(path)
        if any(real.startswith(root) for root in roots):
            continue
        try:
            cloudpickle.register_pickle_by_value(module)
        except ValueError:
            continue
        registered.append(module)
    try:
        yield
    finally:
        for module in registered:
            try:
                cloudpickle.unregister_pickle_by_value(module)
            except ValueError:
                pass


class _Node:
    """The runner's view of one task: waiting, submitted (with how many children are still out), finished."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.children: list[TaskState | None] | None = None  # mapped: one slot per child
        self.out = 0  # calls submitted and not back


EXECUTOR_ENV = "GITFLOWS_EXECUTOR"


def choose_executor(given: Any, flows_own: Any) -> Executor:
    """*given* (``flow.run(executor=...)``), else the flow's own, else ``GITFLOWS_EXECUTOR`` (the agent's
    ``--executor``), else a :class:`LocalExecutor`."""
    from gitflows.executors import Executor, LocalExecutor, from_spec

    for candidate in (given, flows_own):
        if candidate is not None:
            if not isinstance(candidate, Executor):
                raise FlowRunError(f"executor {candidate!r} is not a gitflows executor (gitflows.executors: "
                                   "LocalExecutor, LocalDaskExecutor, DaskExecutor)")
            return candidate
    spec = os.environ.get(EXECUTOR_ENV)
    return from_spec(spec) if spec else LocalExecutor()


def run_flow(flow: Flow, values: Mapping[str, Any], executor: Executor) -> dict[int, TaskState]:
    """Run every task of *flow* on *executor*; the state of each task by ``id(task)``."""
    return _Runner(flow, values, executor).run()


class _Runner:
    def __init__(self, flow: Flow, values: Mapping[str, Any], executor: Executor) -> None:
        self.flow, self.values, self.executor = flow, dict(values), executor
        self.remote = executor.remote
        self.states: dict[int, TaskState] = {}
        self.nodes = {id(t): _Node(t) for t in flow.sorted_tasks()}
        self.started: set[int] = set()
        self.handles: dict[int, tuple[Handle, _Node, list[int | None]]] = {}

    def run(self) -> dict[int, TaskState]:
        with self.executor.start():
            with flow_code_by_value() if self.remote else _nothing():
                self._start_ready()
                while self.handles:
                    done = self.executor.wait_any([h for h, _, _ in self.handles.values()])
                    if not done:
                        raise FlowRunError(f"flow {self.flow.name!r}: {self.executor.describe()} returned no "
                                           "finished call")
                    for handle in done:
                        self._finish(handle)
                    self._start_ready()
        missing = [self.flow.slug(n.task) for k, n in self.nodes.items() if k not in self.states]
        if missing:  # cannot happen for an acyclic graph: said plainly rather than returning half a run
            raise FlowRunError(f"flow {self.flow.name!r}: tasks never ran: {', '.join(missing)}")
        return self.states

    # -- deciding ---------------------------------------------------------------------------------
    def _start_ready(self) -> None:
        progress = True
        while progress:
            progress = False
            for key, node in self.nodes.items():
                if key in self.started:
                    continue
                ups = self.flow.upstream_tasks(node.task)
                if all(id(u) in self.states for u in ups):
                    self.started.add(key)
                    self._start(node, ups)
                    progress = True

    def _start(self, node: _Node, ups: list[Task]) -> None:
        from gitflows.flow import Parameter, TaskState

        t = node.task
        slug = self.flow.slug(t)
        mapped_from = {id(e.upstream) for e in self.flow.edges if e.downstream is t and e.mapped}
        per_child = {u for u in mapped_from if self.states[u].map_states is not None}  # checked child by child
        bad = sorted(self.flow.slug(u) for u in ups if id(u) not in per_child and not self.states[id(u)].all_successful())
        if bad:
            self.states[id(t)] = TaskState("Skipped", message=f"upstream task(s) did not succeed: {', '.join(bad)}")
            log.info("task %s skipped: upstream %s did not succeed", slug, ", ".join(bad))
            return
        if isinstance(t, Parameter):
            self.states[id(t)] = TaskState("Success", result=self.values[t.name], attempts=0)
            return
        if not self.flow.is_mapped(t):
            kwargs = {k: _resolve(v, self.states) for k, v in self.flow.task_args(t).items()}
            self._submit(node, [Call(t, slug, kwargs)], [None])
            return
        self._start_mapped(node, slug)

    def _start_mapped(self, node: _Node, slug: str) -> None:
        from gitflows.flow import TaskState

        t = node.task
        try:
            items = self._children_inputs(t)
        except FlowRunError as exc:
            self.states[id(t)] = TaskState("Failed", message=str(exc))
            log.error("%s", exc)
            return
        node.children = [None] * len(items)
        calls, indices = [], []
        for index, (kwargs, skip) in enumerate(items):
            if skip:
                node.children[index] = TaskState("Skipped", message=f"upstream task(s) did not succeed: {skip}")
                continue
            calls.append(Call(t, slug, kwargs, index))
            indices.append(index)
        if not calls:
            self._settle_mapped(node)
            return
        size = 1
        if self.executor.parallel:
            size = max(1, math.ceil(len(calls) / (self.executor.slots() * CHUNKS_PER_SLOT)))
        for start in range(0, len(calls), size):
            self._submit(node, calls[start:start + size], list(indices[start:start + size]))

    def _children_inputs(self, t: Task) -> list[tuple[dict[str, Any], str]]:
        """Each child's keyword arguments, and why it is skipped ('' when it runs)."""
        from gitflows.flow import _Mapped

        args = self.flow.task_args(t)
        mapped = {k: v.value for k, v in args.items() if isinstance(v, _Mapped)}
        fixed = {k: _resolve(v, self.states) for k, v in args.items() if not isinstance(v, _Mapped)}
        sequences: dict[str, list[tuple[Any, str]]] = {}
        for key, value in mapped.items():
            sequences[key] = self._mapped_sequence(t, key, value)
        length = min((len(s) for s in sequences.values()), default=0)
        children = []
        for index in range(length):
            kwargs, skips = dict(fixed), []
            for key, seq in sequences.items():
                kwargs[key], why = seq[index]
                if why:
                    skips.append(why)
            children.append((kwargs, ", ".join(sorted(set(skips)))))
        return children

    def _mapped_sequence(self, t: Task, key: str, value: Any) -> list[tuple[Any, str]]:
        """The items a mapped argument gives, each with the upstream child that failed ('' when fine)."""
        from gitflows.flow import _TaskRef

        if isinstance(value, _TaskRef):
            state = self.states[id(value.task)]
            name = self.flow.slug(value.task)
            if state.map_states is not None:  # over a mapped task: child by child
                return [(s.result, "" if s.is_successful() else f"{name}[{i}]") for i, s in enumerate(state.map_states)]
            value = state.result
        else:
            value = _resolve(value, self.states)
        if isinstance(value, Mapping | set | frozenset) or not hasattr(value, "__getitem__") \
                or not hasattr(value, "__len__"):
            raise FlowRunError(f"task {self.flow.slug(t)!r} maps over argument {key!r}, which is not a sequence "
                               f"({type(value).__name__}); map over a list, or wrap it in unmapped(...) to pass it "
                               "whole")
        return [(value[i], "") for i in range(len(value))]

    def _submit(self, node: _Node, calls: list[Call], indices: list[int | None]) -> None:
        if self.remote:
            import cloudpickle

            handle = self.executor.submit(run_pickled, cloudpickle.dumps(calls))
        else:
            handle = self.executor.submit(run_calls, calls)
        node.out += 1
        self.handles[id(handle)] = (handle, node, indices)

    # -- collecting -------------------------------------------------------------------------------
    def _finish(self, handle: Handle) -> None:
        from gitflows.flow import TaskState

        _, node, indices = self.handles.pop(id(handle))
        node.out -= 1
        if handle.error is not None:
            where = self.flow.slug(node.task)
            log.error("task %s: %s", where, handle.error)
            states = [TaskState("Failed", message=handle.error) for _ in indices]
        elif self.remote:
            import cloudpickle

            states = cloudpickle.loads(handle.value)
        else:
            states = handle.value
        for index, state in zip(indices, states, strict=True):
            if index is None:
                self.states[id(node.task)] = state
            else:
                assert node.children is not None
                node.children[index] = state
        if node.children is not None and node.out == 0:
            self._settle_mapped(node)

    def _settle_mapped(self, node: _Node) -> None:
        from gitflows.flow import TaskState

        children = [s for s in node.children or [] if s is not None]
        failed = sum(1 for s in children if not s.is_successful())
        message = f"{len(children)} mapped run(s)" + (f", {failed} did not succeed" if failed else "")
        self.states[id(node.task)] = TaskState("Mapped", result=[s.result for s in children], message=message,
                                               attempts=0, map_states=children)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _resolve(value: Any, states: dict[int, TaskState]) -> Any:
    from gitflows.flow import _resolve as resolve

    return resolve(value, states)
