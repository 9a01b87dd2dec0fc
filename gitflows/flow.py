"""The flow model: the Prefect 1 functional API (``Flow``, ``task``, ``Parameter``).

Calling a task inside ``with Flow(...)`` does not run it: it adds a copy of the
task to the flow and records where its arguments come from (other tasks, flow
parameters, constants). ``task.map(...)`` adds a mapped copy: at run time, one
child run per item of its mapped arguments (``unmapped(x)`` passes ``x`` whole).
``flow.run()`` then runs the tasks on an executor (:mod:`gitflows.executors`;
in this process, one after another, by default): see :mod:`gitflows.flowrun`.
"""

from __future__ import annotations

import contextvars
import copy
import datetime as _dt
import functools
import hashlib
import importlib
import inspect
import json
import textwrap
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from gitflows.errors import FlowNotFoundError, FlowRunError
from gitflows.redact import get_logger

log = get_logger(__name__)

_active_flow: contextvars.ContextVar[Flow | None] = contextvars.ContextVar("gitflows_active_flow", default=None)
_NO_DEFAULT = object()


def _source_digest(fn: Callable[..., Any]) -> str | None:
    """A short digest of a function's source text (None when the source is unavailable)."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    """*value* if it is JSON-serializable, else a stable description of its type."""
    try:
        json.dumps(value, sort_keys=True)
        return value
    except (TypeError, ValueError):
        return f"<{type(value).__module__}.{type(value).__qualname__}>"


#: true while gitflows executes a flow script to extract its flows (Prefect 1's ``context.loading_flow``)
loading_flow: contextvars.ContextVar[bool] = contextvars.ContextVar("gitflows_loading_flow", default=False)


class Task:
    """A unit of work. Usually made with the :func:`task` decorator."""

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        name: str | None = None,
        max_retries: int = 0,
        retry_delay: float | _dt.timedelta = 0.0,
        tags: Iterable[str] | None = None,
    ) -> None:
        if fn is not None and not callable(fn):
            raise TypeError(f"task function must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or (getattr(fn, "__name__", None) if fn else None) or type(self).__name__
        if max_retries < 0:
            raise ValueError(f"task {self.name!r}: max_retries must be >= 0, got {max_retries}")
        self.max_retries = int(max_retries)
        if isinstance(retry_delay, _dt.timedelta):
            retry_delay = retry_delay.total_seconds()
        self.retry_delay = float(retry_delay)
        self.tags = set(tags or ())
        self.source_digest = _source_digest(fn) if fn is not None else None
        if fn is not None:
            functools.update_wrapper(self, fn, updated=())

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task's function directly (outside any flow)."""
        if self.fn is None:
            raise NotImplementedError(f"task {self.name!r} has no function")
        return self.fn(*args, **kwargs)

    @property
    def kind(self) -> str:
        return "task"

    def __call__(self, *args: Any, upstream_tasks: Iterable[Task] | None = None, **kwargs: Any) -> Task:
        return self._add_copy(args, kwargs, upstream_tasks, mapped=False)

    def map(self, *args: Any, upstream_tasks: Iterable[Task] | None = None, **kwargs: Any) -> Task:
        """Add a mapped copy of this task to the flow being built (Prefect 1's ``task.map``): at run time it
        runs once per item of its arguments — lists, tuples, other tasks' results, including another mapped
        task's (child by child) — zipped, as many times as the shortest has items. ``unmapped(value)`` passes
        a value whole to every child. A normal task given this task's result gets the list of the children's
        results (a reduce)."""
        return self._add_copy(args, kwargs, upstream_tasks, mapped=True)

    def _add_copy(self, args: tuple[Any, ...], kwargs: dict[str, Any], upstream_tasks: Iterable[Task] | None,
                  mapped: bool) -> Task:
        flow = _active_flow.get()
        if flow is None:
            call = f"{self.name}.map(...)" if mapped else f"{self.name}(...)"
            raise FlowRunError(
                f"task {self.name!r} was called ({call}) outside a `with Flow(...)` block; "
                f"use {self.name}.run(...) to call its function directly"
            )
        node = copy.copy(self)
        flow.add_task(node)
        flow._bind(node, args, kwargs, mapped=mapped)
        for upstream in upstream_tasks or ():
            flow.add_edge(upstream, node)
        return node

    def __repr__(self) -> str:
        return f"<Task: {self.name}>"


class Parameter(Task):
    """A value supplied when the flow runs. Created in a flow block, it joins that flow."""

    def __init__(self, name: str, default: Any = None, required: bool | None = None) -> None:
        super().__init__(name=name)
        if required is None:
            required = default is None
        self.default = default
        self.required = bool(required)
        flow = _active_flow.get()
        if flow is not None:
            flow.add_task(self)

    @property
    def kind(self) -> str:
        return "parameter"

    def run(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never called for parameters
        return self.default

    def __call__(self, *args: Any, **kwargs: Any) -> Task:
        raise FlowRunError(f"parameter {self.name!r} cannot be called; pass it to a task instead")

    def __repr__(self) -> str:
        return f"<Parameter: {self.name}>"


def task(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    max_retries: int = 0,
    retry_delay: float | _dt.timedelta = 0.0,
    tags: Iterable[str] | None = None,
) -> Any:
    """Turn a function into a :class:`Task`: ``@task`` or ``@task(max_retries=2, retry_delay=0.1)``."""
    if fn is None:
        return lambda f: Task(f, name=name, max_retries=max_retries, retry_delay=retry_delay, tags=tags)
    return Task(fn, name=name, max_retries=max_retries, retry_delay=retry_delay, tags=tags)


class unmapped:  # noqa: N801 - Prefect 1's name
    """Pass *value* whole to every child of a mapped task: ``add.map(x=[1, 2, 3], y=unmapped(10))``."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"unmapped({self.value!r})"


class _Mapped:
    """A mapped task's argument that is iterated child by child (inside the flow's recorded arguments)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Edge:
    """Data or ordering dependency: *downstream* runs after *upstream* (and gets its result as *key*);
    *mapped*: the downstream task maps over the upstream's result."""

    __slots__ = ("upstream", "downstream", "key", "mapped")

    def __init__(self, upstream: Task, downstream: Task, key: str | None = None, mapped: bool = False) -> None:
        self.upstream, self.downstream, self.key, self.mapped = upstream, downstream, key, bool(mapped)

    def _ident(self) -> tuple[int, int, str | None, bool]:
        return (id(self.upstream), id(self.downstream), self.key, self.mapped)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Edge) and self._ident() == other._ident()

    def __hash__(self) -> int:
        return hash(self._ident())

    def __repr__(self) -> str:
        return f"<Edge {self.upstream.name} -> {self.downstream.name} ({self.key}){' mapped' if self.mapped else ''}>"


class TaskState:
    """What happened to one task: ``Success``, ``Failed`` or ``Skipped``; a mapped task is ``Mapped`` (a
    success, as in Prefect 1) with one state per child in ``map_states`` and their results as ``result``.
    ``worker`` names the Dask worker that ran it (None in this process)."""

    def __init__(self, state: str, result: Any = None, message: str = "", attempts: int = 0,
                 exception: BaseException | None = None, map_states: list[TaskState] | None = None) -> None:
        self.state, self.result, self.message, self.attempts = state, result, message, attempts
        self.exception = exception
        self.map_states = map_states
        self.worker: str | None = None

    def is_successful(self) -> bool:
        return self.state in ("Success", "Mapped")

    def is_mapped(self) -> bool:
        return self.state == "Mapped"

    def all_successful(self) -> bool:
        """Successful, and so is every mapped child."""
        return self.is_successful() and all(s.all_successful() for s in self.map_states or ())

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"map_states": None, "worker": None, **state})

    def is_failed(self) -> bool:
        return self.state == "Failed"

    def is_skipped(self) -> bool:
        return self.state == "Skipped"

    def __repr__(self) -> str:
        return f"<{self.state}: {self.message}>" if self.message else f"<{self.state}>"


class _ByTask(dict[str, "TaskState"]):
    """Task states by task name, also looked up by the task itself: ``state.result[my_task]`` (Prefect 1)."""

    def __init__(self, states: dict[str, TaskState], slugs: dict[int, str]) -> None:
        super().__init__(states)
        self._slugs = slugs

    def _key(self, key: object) -> object:
        return self._slugs.get(id(key), getattr(key, "name", key)) if isinstance(key, Task) else key

    def __getitem__(self, key: object) -> TaskState:
        return super().__getitem__(self._key(key))  # type: ignore[index]

    def __contains__(self, key: object) -> bool:
        return super().__contains__(self._key(key))

    def get(self, key: object, default: Any = None) -> Any:
        return super().get(self._key(key), default)  # type: ignore[call-overload]


class FlowState:
    """The outcome of :meth:`Flow.run`. ``state.result`` maps task names (or the tasks themselves) to
    :class:`TaskState`; a mapped child that failed fails the flow, as in Prefect 1."""

    def __init__(self, flow: Flow, result: dict[str, TaskState]) -> None:
        self.flow_name = flow.name
        self.result = _ByTask(result, {id(t): flow.slug(t) for t in flow.tasks})
        self.state = "Success" if all(s.all_successful() for s in result.values()) else "Failed"
        failed = [n for n, s in result.items() if s.is_failed()]
        failed += [f"{n}[{i}]" for n, s in result.items() for i, c in enumerate(s.map_states or ()) if c.is_failed()]
        self.message = f"tasks failed: {', '.join(failed)}" if failed else "all tasks succeeded"

    def is_successful(self) -> bool:
        return self.state == "Success"

    def is_failed(self) -> bool:
        return self.state == "Failed"

    def __getitem__(self, key: str | Task) -> TaskState:
        try:
            return self.result[key]
        except KeyError:
            raise KeyError(f"no task named {key!r} in flow {self.flow_name!r}; tasks: {', '.join(self.result)}") from None

    @property
    def results(self) -> dict[str, Any]:
        """Each successful task's return value by task name."""
        return {name: s.result for name, s in self.result.items() if s.is_successful()}

    def __repr__(self) -> str:
        return f"<{self.state}: {self.message}>"


class _TaskRef:
    """A placeholder for a task's result inside an argument value (lists, dicts)."""

    __slots__ = ("task",)

    def __init__(self, t: Task) -> None:
        self.task = t


class Flow:
    """A named graph of tasks. Use as a context manager to build it functionally."""

    def __init__(self, name: str, tasks: Iterable[Task] | None = None, storage: Any = None,
                 **kwargs: Any) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a flow needs a non-empty name, got {name!r}")
        self.name = name
        self.storage = storage
        self.run_config = kwargs.pop("run_config", None)
        self.schedule = kwargs.pop("schedule", None)
        #: where flow.run() runs the tasks when not told (gitflows.executors; None: GITFLOWS_EXECUTOR, else local)
        self.executor = kwargs.pop("executor", None)
        self._mapped: set[Task] = set()
        self.extra = kwargs
        #: a set, as in Prefect 1 (``flow.tasks == {t1, t2}``); the order tasks were added is kept in _slugs
        self.tasks: set[Task] = set()
        self.edges: set[Edge] = set()
        self._reference_tasks: set[Task] = set()
        self._slugs: dict[Task, str] = {}
        self._args: dict[Task, dict[str, Any]] = {}
        self._tokens: list[contextvars.Token[Flow | None]] = []
        for t in tasks or ():
            self.add_task(t)

    # -- building -----------------------------------------------------------------
    def __enter__(self) -> Flow:
        self._tokens.append(_active_flow.set(self))
        return self

    def __exit__(self, *exc: object) -> None:
        _active_flow.reset(self._tokens.pop())

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_tokens"] = []
        return state

    def add_task(self, t: Task) -> Task:
        if not isinstance(t, Task):
            raise TypeError(f"flow {self.name!r}: expected a Task, got {type(t).__name__}")
        if t in self._slugs:
            return t
        if isinstance(t, Parameter):
            for other in self.parameters():
                if other.name == t.name:
                    raise FlowRunError(f"flow {self.name!r} already has a parameter named {t.name!r}")
        taken = set(self._slugs.values())
        slug, n = t.name, 1
        while slug in taken:
            n += 1
            slug = f"{t.name}-{n}"
        self._slugs[t] = slug
        self._args[t] = {}
        self.tasks.add(t)
        return t

    def add_edge(self, upstream: Task, downstream: Task, key: str | None = None, mapped: bool = False) -> Edge:
        self.add_task(upstream)
        self.add_task(downstream)
        edge = Edge(upstream, downstream, key, mapped)
        self.edges.add(edge)
        return edge

    def set_dependencies(self, task: Task, upstream_tasks: Iterable[Task] | None = None,
                         downstream_tasks: Iterable[Task] | None = None,
                         keyword_tasks: Mapping[str, Any] | None = None) -> None:
        """The imperative API: wire *task* to upstream/downstream tasks and keyword inputs."""
        self.add_task(task)
        for up in upstream_tasks or ():
            self.add_edge(up, task)
        for down in downstream_tasks or ():
            self.add_edge(task, down)
        if keyword_tasks:
            self._bind(task, (), dict(keyword_tasks))

    def _bind(self, node: Task, args: tuple[Any, ...], kwargs: dict[str, Any], mapped: bool = False) -> None:
        if node.fn is not None:
            try:
                bound = inspect.signature(node.fn).bind_partial(*args, **kwargs)
            except TypeError as exc:
                raise FlowRunError(f"task {node.name!r} in flow {self.name!r}: {exc}") from None
            params = inspect.signature(node.fn).parameters
            named: dict[str, Any] = {}
            for key, value in bound.arguments.items():
                kind = params[key].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    named.update(value)
                elif kind is inspect.Parameter.VAR_POSITIONAL:
                    if value:
                        raise FlowRunError(f"task {node.name!r}: *{key} arguments are not supported in a flow; "
                                           "pass a list instead")
                else:
                    named[key] = value
        else:
            if args:
                raise FlowRunError(f"task {node.name!r} takes keyword arguments only")
            named = dict(kwargs)
        if mapped:
            self._mapped.add(node)
        for key, value in named.items():
            if isinstance(value, unmapped):
                self._args[node][key] = self._capture(value.value, node, key)
            elif mapped and isinstance(value, Task):
                self.add_edge(value, node, key, mapped=True)
                self._args[node][key] = _Mapped(_TaskRef(value))
            elif mapped:
                self._args[node][key] = _Mapped(self._capture(value, node, key))
            else:
                self._args[node][key] = self._capture(value, node, key)

    def _capture(self, value: Any, node: Task, key: str) -> Any:
        if isinstance(value, Task):
            self.add_edge(value, node, key)
            return _TaskRef(value)
        if isinstance(value, list | tuple):
            return type(value)(self._capture(v, node, key) for v in value)
        if isinstance(value, dict):
            return {k: self._capture(v, node, key) for k, v in value.items()}
        return value

    # -- inspecting -------------------------------------------------------------
    def slug(self, t: Task) -> str:
        return self._slugs[t]

    def is_mapped(self, t: Task) -> bool:
        """Whether *t* was added with ``task.map(...)``."""
        return t in getattr(self, "_mapped", ())

    def task_args(self, t: Task) -> dict[str, Any]:
        """The arguments recorded for *t* (task references and mapped markers inside)."""
        return self._args[t]

    def _ordered(self) -> list[Task]:
        """Tasks in the order they were added (``flow.tasks`` is a set, as in Prefect 1)."""
        return [t for t in self._slugs if t in self.tasks]

    def root_tasks(self) -> set[Task]:
        """Tasks with no upstream task."""
        downstream = {e.downstream for e in self.edges}
        return {t for t in self.tasks if t not in downstream}

    def terminal_tasks(self) -> set[Task]:
        """Tasks with no downstream task."""
        upstream = {e.upstream for e in self.edges}
        return {t for t in self.tasks if t not in upstream}

    def reference_tasks(self) -> set[Task]:
        """The tasks whose states decide the flow's state: those set, else the terminal tasks (Prefect 1)."""
        return set(self._reference_tasks) or self.terminal_tasks()

    def set_reference_tasks(self, tasks: Iterable[Task]) -> None:
        tasks = set(tasks)
        unknown = [t.name for t in tasks if t not in self.tasks]
        if unknown:
            raise ValueError(f"flow {self.name!r}: reference tasks {', '.join(unknown)} are not in the flow")
        self._reference_tasks = tasks

    def __eq__(self, other: object) -> bool:
        """Prefect 1's equality: same type, name, tasks, edges and reference tasks."""
        if type(self) is not type(other):
            return False
        assert isinstance(other, Flow)
        return (self.name, self.tasks, self.edges, self.reference_tasks()) == \
            (other.name, other.tasks, other.edges, other.reference_tasks())

    def __hash__(self) -> int:
        return id(self)

    def __iter__(self) -> Iterator[Task]:
        yield from self.sorted_tasks()

    def parameters(self) -> list[Parameter]:
        return [t for t in self._ordered() if isinstance(t, Parameter)]

    def get_tasks(self, name: str | None = None) -> list[Task]:
        return [t for t in self._ordered() if name is None or t.name == name]

    def upstream_tasks(self, t: Task) -> list[Task]:
        return [e.upstream for e in self.edges if e.downstream is t]

    def sorted_tasks(self) -> list[Task]:
        """Tasks in dependency order (stable: ties keep the order tasks were added)."""
        tasks = self._ordered()
        order = {id(t): i for i, t in enumerate(tasks)}
        indegree = {id(t): 0 for t in tasks}
        downstream: dict[int, list[Task]] = {id(t): [] for t in tasks}
        for e in self.edges:
            indegree[id(e.downstream)] += 1
            downstream[id(e.upstream)].append(e.downstream)
        ready = [t for t in tasks if indegree[id(t)] == 0]
        result: list[Task] = []
        while ready:
            t = ready.pop(0)
            result.append(t)
            for d in downstream[id(t)]:
                indegree[id(d)] -= 1
                if indegree[id(d)] == 0:
                    ready.append(d)
            ready.sort(key=lambda x: order[id(x)])
        if len(result) != len(self.tasks):
            stuck = sorted(self.slug(t) for t in tasks if indegree[id(t)] > 0)
            raise FlowRunError(f"flow {self.name!r} has a dependency cycle among: {', '.join(stuck)}")
        return result

    def structure(self) -> dict[str, Any]:
        """A JSON-able description: tasks, edges, parameters (with defaults), constants."""
        tasks = []
        for t in self._ordered():
            entry: dict[str, Any] = {"name": self.slug(t), "kind": t.kind}
            if not isinstance(t, Parameter):
                entry["function"] = getattr(t.fn, "__qualname__", None) if t.fn else type(t).__qualname__
                entry["source"] = t.source_digest
                entry["max_retries"] = t.max_retries
                if self.is_mapped(t):  # only mapped tasks carry it: other fingerprints stay as they were
                    entry["mapped"] = True
                constants = {k: _jsonable(_unwrap(v)) for k, v in self._args[t].items() if not _has_ref(v)}
                if constants:
                    entry["constants"] = constants
            tasks.append(entry)
        edges = sorted(
            ({"upstream": self.slug(e.upstream), "downstream": self.slug(e.downstream), "key": e.key,
              **({"mapped": True} if e.mapped else {})} for e in self.edges),
            key=lambda e: (e["upstream"], e["downstream"], e["key"] or ""),
        )
        parameters = sorted(
            ({"name": p.name, "default": _jsonable(p.default), "required": p.required} for p in self.parameters()),
            key=lambda p: p["name"],
        )
        described: dict[str, Any] = {"name": self.name, "tasks": sorted(tasks, key=lambda t: t["name"]),
                                     "edges": edges, "parameters": parameters}
        to_dict = getattr(self.schedule, "to_dict", None)
        if to_dict is not None:  # only scheduled flows carry it: unscheduled fingerprints stay as they were
            described["schedule"] = to_dict()
        return described

    def fingerprint(self) -> str:
        """A stable sha256 of :meth:`structure` (same flow, same value, in any process)."""
        canonical = json.dumps(self.structure(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    # -- running ----------------------------------------------------------------
    def _check_parameters(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        declared = {p.name: p for p in self.parameters()}
        unknown = sorted(set(parameters) - set(declared))
        if unknown:
            takes = ", ".join(sorted(declared)) or "no parameters"
            raise FlowRunError(f"flow {self.name!r}: unknown parameter(s) {', '.join(unknown)}; it takes: {takes}")
        values: dict[str, Any] = {}
        missing = []
        for name, p in declared.items():
            if name in parameters:
                values[name] = parameters[name]
            elif p.required:
                missing.append(name)
            else:
                values[name] = p.default
        if missing:
            raise FlowRunError(f"flow {self.name!r}: required parameter(s) not given: {', '.join(sorted(missing))}")
        return values

    def register(self, project_name: str | None = None, build: bool = True, labels: Iterable[str] | None = None,
                 **kwargs: Any) -> str | None:
        """Register this flow in the gitflows registry (``GITFLOWS_REGISTRY``), as Prefect 1's ``flow.register``.

        Returns ``"<name>:v<version>"``. ``project_name`` and Prefect's other registration options
        (``set_schedule_active``, ``version_group_id``, ``no_url``, ``idempotency_key``) are accepted
        and have no effect: the registry has no projects. Called while gitflows loads the flow's
        script (a ``flow.register(...)`` at the bottom of a Prefect 1 file), it warns and does
        nothing, as Prefect 1 did.
        """
        if loading_flow.get():
            warnings.warn(f"flow {self.name!r}: flow.register() was called while its script was being loaded; "
                          "gitflows skips it", UserWarning, stacklevel=2)
            return None
        # The registry is a layer above the flow model: reached at call time only, as Prefect's Flow
        # reached its API client, so importing the model never imports the registry.
        register_flow = importlib.import_module("gitflows.register").register_flow
        version = register_flow(self, labels=labels, build=build)
        return f"{self.name}:v{version.version}"

    def run(self, parameters: Mapping[str, Any] | None = None, executor: Any = None,
            **kwargs: Any) -> FlowState | None:
        """Run every task and return the flow's state. *executor* (else ``flow.executor``, else the
        ``GITFLOWS_EXECUTOR`` setting an agent passes, else :class:`~gitflows.executors.LocalExecutor`)
        decides where: in this process one after another, or on Dask (:mod:`gitflows.executors`).
        Prefect 1's other ``run`` options (``run_on_schedule``, ``runner_cls``, ...) are accepted and
        ignored.

        Called while gitflows is loading the flow's script (a bare ``flow.run()`` at the bottom of a
        Prefect 1 flow file), it warns and returns None without running, as Prefect 1 did.
        """
        if loading_flow.get():
            warnings.warn(f"flow {self.name!r}: flow.run() was called while its script was being loaded; gitflows "
                          "skips it (guard it with `if __name__ == \"__main__\":`)", UserWarning, stacklevel=2)
            return None
        from gitflows.flowrun import choose_executor, run_flow

        values = self._check_parameters(dict(parameters or {}))
        states = run_flow(self, values, choose_executor(executor, self.executor))
        return FlowState(self, {self.slug(t): states[id(t)] for t in self._ordered()})

    def visualize(self, flow_state: FlowState | None = None, filename: str | None = None,
                  format: str | None = None) -> Any:
        """The flow graph as a ``graphviz.Digraph`` (Prefect 1's ``flow.visualize``): tasks, edges, mapped
        tasks and edges marked, coloured by *flow_state* when given. With *filename*, also written to
        ``filename.<format>`` (``svg`` by default; ``png``, ``pdf``, ...). Prefect 1 opened a viewer; gitflows
        never does (agents and CI have no display): display the returned graph in a notebook, or give a
        filename. See :mod:`gitflows.visualize`."""
        from gitflows.visualize import render

        return render(self, flow_state, filename, format)

    def __repr__(self) -> str:
        return f"<Flow: name={self.name!r}, tasks={len(self.tasks)}>"


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, _Mapped) else value


def _has_ref(value: Any) -> bool:
    if isinstance(value, _Mapped):
        return _has_ref(value.value)
    if isinstance(value, _TaskRef):
        return True
    if isinstance(value, list | tuple):
        return any(_has_ref(v) for v in value)
    if isinstance(value, dict):
        return any(_has_ref(v) for v in value.values())
    return False


def _resolve(value: Any, states: dict[int, TaskState]) -> Any:
    if isinstance(value, _TaskRef):
        return states[id(value.task)].result
    if isinstance(value, list | tuple):
        return type(value)(_resolve(v, states) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, states) for k, v in value.items()}
    return value


def select_flow(flows: list[Flow], flow_name: str | None, where: str) -> Flow:
    """Pick the flow called *flow_name* from *flows*, or the only one; never silently the first.

    Messages keep Prefect 1's phrases ("Failed to find flow", "No flows found", "Multiple flows
    found") on one line.
    """
    names = [f.name for f in flows]
    found = ", ".join(repr(n) for n in names) or "none"
    if flow_name is not None:
        for f in flows:
            if f.name == flow_name:
                return f
        raise FlowNotFoundError(f"Failed to find flow {flow_name!r} in {where}; flows found: {found}")
    if not flows:
        raise FlowNotFoundError(f"No flows found in {where}")
    if len(flows) > 1:
        raise FlowNotFoundError(
            f"Multiple flows found in {where} ({found}); name the one you want (flow_name=... / --flow NAME)"
        )
    return flows[0]
