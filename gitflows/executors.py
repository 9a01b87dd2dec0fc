"""Executors: where a flow's tasks run (Prefect 1's ``prefect.executors``).

``flow.run(executor=...)`` (or ``flow.executor = ...``) picks one:

* :class:`LocalExecutor` — every task in this process, one after another (the default);
* :class:`LocalDaskExecutor` — Dask's local scheduler, ``scheduler="threads"`` or ``"processes"``,
  ``num_workers``: independent tasks and mapped children run in parallel on this machine;
* :class:`DaskExecutor` — a ``dask.distributed`` cluster: an existing one at ``address``
  (``tcp://scheduler:8786``), or one started for the run from ``cluster_class(**cluster_kwargs)``
  (default ``distributed.LocalCluster``), adaptive with ``adapt_kwargs``.

Dask is an optional extra (``pip install -e '.[dask]'``); nothing here imports it until a Dask
executor starts. The flow runner (:mod:`gitflows.flowrun`) talks to every executor through the same
three calls — ``submit``, ``wait_any``, ``outcome`` — so results, retries and task states are the
same whichever runs them.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gitflows.errors import ConfigurationError, LibraryMissingError

DASK_HINT = "pip install -e '.[dask]' in the gitflows checkout"


@dataclass
class Handle:
    """One submitted call: its result (or error) once known, and the executor's own future."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    done: bool = False
    value: Any = None
    error: str | None = None  # why the call itself could not run (a worker died, no scheduler)
    future: Any = None


class Executor:
    """The interface the flow runner uses. ``start()`` is a context manager around a run."""

    #: True when submitted calls may run at the same time (the runner then submits in chunks)
    parallel = False
    #: True when calls run in other processes (the runner then sends them cloudpickled, flow code by value)
    remote = False

    @contextmanager
    def start(self) -> Iterator[Executor]:
        yield self

    def slots(self) -> int:
        """How many calls can run at once (for sizing chunks of mapped children)."""
        return 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> Handle:
        raise NotImplementedError

    def wait_any(self, handles: list[Handle]) -> list[Handle]:
        """Block until at least one of *handles* is done; the done ones."""
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


class LocalExecutor(Executor):
    """Runs each call at once, in this process (Prefect 1's ``LocalExecutor``)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Handle:
        return Handle(fn, args, done=True, value=fn(*args))

    def wait_any(self, handles: list[Handle]) -> list[Handle]:
        return [h for h in handles if h.done]


def _import_dask(what: str) -> Any:
    try:
        return importlib.import_module(what)
    except ImportError:
        raise LibraryMissingError(f"this executor needs Dask ({what}): {DASK_HINT}") from None


class LocalDaskExecutor(Executor):
    """Dask's local scheduler (Prefect 1's ``LocalDaskExecutor``): ``scheduler`` is ``"threads"`` (the
    default; ``"threading"`` too) or ``"processes"`` (``"multiprocessing"``); ``num_workers`` defaults to
    the machine's CPUs. The calls ready at one moment are handed to Dask together and run in parallel;
    with ``processes``, tasks and their results must pickle (cloudpickle)."""

    parallel = True
    _NAMES = {"threads": "threads", "threading": "threads", "processes": "processes",
              "multiprocessing": "processes", "synchronous": "synchronous", "sync": "synchronous"}

    def __init__(self, scheduler: str = "threads", num_workers: int | None = None, **kwargs: Any) -> None:
        if scheduler not in self._NAMES:
            raise ConfigurationError(f"LocalDaskExecutor(scheduler={scheduler!r}): expected 'threads', 'processes' "
                                     "or 'synchronous'")
        if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 1):
            raise ConfigurationError(f"LocalDaskExecutor(num_workers={num_workers!r}): expected a whole number >= 1")
        self.scheduler = self._NAMES[scheduler]
        self.remote = self.scheduler == "processes"
        self.num_workers = num_workers
        self.dask_kwargs = kwargs
        self._queued: list[Handle] = []

    def describe(self) -> str:
        return f"LocalDaskExecutor(scheduler={self.scheduler!r}, num_workers={self.slots()})"

    @contextmanager
    def start(self) -> Iterator[Executor]:
        _import_dask("dask")
        self._queued = []
        yield self

    def slots(self) -> int:
        return 1 if self.scheduler == "synchronous" else self.num_workers or os.cpu_count() or 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> Handle:
        handle = Handle(fn, args)
        self._queued.append(handle)
        return handle

    def wait_any(self, handles: list[Handle]) -> list[Handle]:
        queued = [h for h in self._queued if not h.done]
        self._queued = []
        if queued:
            from dask.base import compute
            from dask.delayed import delayed

            self._compute(queued, compute, delayed)
        return [h for h in handles if h.done]

    def _compute(self, queued: list[Handle], compute: Any, delayed: Any) -> None:
        """Run *queued* together; when that fails as a whole (a worker process died, a call could not be
        unpickled there), run each alone, so only the calls at fault fail."""
        calls = [delayed(_call, pure=False)(h.fn, *h.args) for h in queued]
        try:
            values = compute(*calls, scheduler=self.scheduler, num_workers=self.slots(), **self.dask_kwargs)
        except Exception as exc:  # noqa: BLE001 - any failure of the scheduler itself, named on the calls
            if len(queued) > 1:
                for handle in queued:
                    self._compute([handle], compute, delayed)
                return
            queued[0].done = True
            queued[0].error = (f"the call failed in Dask's {self.scheduler} scheduler ({type(exc).__name__}: "
                               f"{str(exc)[:300]})")
            return
        for handle, value in zip(queued, values, strict=True):
            handle.done, handle.value = True, value


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


class DaskExecutor(Executor):
    """A ``dask.distributed`` cluster (Prefect 1's ``DaskExecutor``).

    ``address``: an existing scheduler (``tcp://10.0.0.5:8786``). Without it, a cluster is started for
    the run: ``cluster_class`` (a class, or its import path such as ``"dask_kubernetes.KubeCluster"``;
    default ``distributed.LocalCluster``) called with ``cluster_kwargs``, made adaptive with
    ``adapt_kwargs``, closed afterwards. ``client_kwargs`` go to ``distributed.Client``.

    Calls are submitted as futures and collected as they finish. A worker that dies is Dask's to handle
    (its calls are rescheduled on other workers; a call that keeps killing workers fails with
    ``KilledWorker``); when no worker at all is left for ``no_workers_timeout`` seconds (gitflows'
    addition, default 60), the calls still waiting fail instead of waiting forever."""

    parallel = True
    remote = True

    def __init__(self, address: str | None = None, cluster_class: Any = None, cluster_kwargs: dict[str, Any] | None = None,
                 adapt_kwargs: dict[str, Any] | None = None, client_kwargs: dict[str, Any] | None = None,
                 debug: bool = False, no_workers_timeout: float = 60.0) -> None:
        if address is not None and cluster_class is not None:
            raise ConfigurationError("DaskExecutor: give address= (an existing cluster) or cluster_class= (one started "
                                     "for the run), not both")
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = dict(adapt_kwargs or {})
        self.client_kwargs = dict(client_kwargs or {})
        self.debug = debug
        self.no_workers_timeout = no_workers_timeout
        self.client: Any = None
        self.cluster: Any = None

    def describe(self) -> str:
        return f"DaskExecutor(address={self.address!r})" if self.address else "DaskExecutor(temporary cluster)"

    def __getstate__(self) -> dict[str, Any]:  # a flow holding it pickles without the live client
        state = self.__dict__.copy()
        state["client"] = state["cluster"] = None
        return state

    def _cluster_class(self) -> Any:
        if self.cluster_class is None:
            return _import_dask("distributed").LocalCluster
        if isinstance(self.cluster_class, str):
            module, _, name = self.cluster_class.rpartition(".")
            return getattr(_import_dask(module), name)
        return self.cluster_class

    @contextmanager
    def start(self) -> Iterator[Executor]:
        distributed = _import_dask("distributed")
        kwargs = {"set_as_default": False, **self.client_kwargs}
        try:
            if self.address is not None:
                self.client = distributed.Client(self.address, **kwargs)
            else:
                cluster_kwargs = dict(self.cluster_kwargs)
                if self.cluster_class is None:  # a local cluster: quiet and on this machine only
                    cluster_kwargs.setdefault("dashboard_address", None)
                    cluster_kwargs.setdefault("host", "127.0.0.1")
                self.cluster = self._cluster_class()(**cluster_kwargs)
                if self.adapt_kwargs:
                    self.cluster.adapt(**self.adapt_kwargs)
                self.client = distributed.Client(self.cluster, **kwargs)
        except (OSError, TimeoutError) as exc:
            self._close()
            where = self.address or "the cluster started for the run"
            raise ConfigurationError(f"DaskExecutor: no Dask scheduler answers at {where} ({type(exc).__name__}: "
                                     f"{str(exc)[:200]}); start one or fix address=") from None
        try:
            yield self
        finally:
            self._close()

    def _close(self) -> None:
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001 - closing what may already be gone
                    pass
        self.client = self.cluster = None

    def slots(self) -> int:
        try:
            workers = self.client.scheduler_info().get("workers", {}).values()
            return max(1, sum(int(w.get("nthreads", 1)) for w in workers))
        except Exception:  # noqa: BLE001 - an adaptive cluster may have none yet
            return 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> Handle:
        handle = Handle(fn, args)
        handle.future = self.client.submit(fn, *args, pure=False)
        return handle

    def wait_any(self, handles: list[Handle]) -> list[Handle]:
        distributed = _import_dask("distributed")
        waiting = {h.future: h for h in handles if not h.done}
        alone_since: float | None = None
        while waiting and not any(h.done for h in handles):
            try:
                with self.client.as_current():  # wait() asks for the current client; ours is not the default
                    distributed.wait(list(waiting), timeout=1, return_when="FIRST_COMPLETED")
            except distributed.TimeoutError:
                alone_since = self._check_workers(waiting, alone_since)
                continue
            except OSError as exc:  # the scheduler went away
                self._fail(waiting, f"lost the Dask scheduler ({type(exc).__name__}: {str(exc)[:200]})")
                break
            for future, handle in list(waiting.items()):
                if future.done():
                    self._collect(handle)
                    del waiting[future]
        return [h for h in handles if h.done]

    def _check_workers(self, waiting: dict[Any, Handle], alone_since: float | None) -> float | None:
        """Fail what is waiting once no worker was left for ``no_workers_timeout`` seconds."""
        try:
            workers = self.client.scheduler_info().get("workers", {})
        except Exception as exc:  # noqa: BLE001 - the scheduler is gone: nothing will finish
            self._fail(waiting, f"lost the Dask scheduler ({type(exc).__name__})")
            return None
        if workers:
            return None
        now = time.monotonic()
        if alone_since is None:
            return now
        if now - alone_since >= self.no_workers_timeout:
            self._fail(waiting, f"no Dask worker for {self.no_workers_timeout:g}s")
        return alone_since

    @staticmethod
    def _fail(waiting: dict[Any, Handle], why: str) -> None:
        for future, handle in list(waiting.items()):
            future.cancel()
            handle.done, handle.error = True, why
            del waiting[future]

    @staticmethod
    def _collect(handle: Handle) -> None:
        future = handle.future
        handle.done = True
        if future.status == "finished":
            handle.value = future.result()
            return
        try:
            exc = future.exception()
        except Exception as err:  # noqa: BLE001 - cancelled, or the scheduler forgot it
            exc = err
        kind = type(exc).__name__
        if kind == "KilledWorker":
            handle.error = ("the Dask workers running it died (KilledWorker: it was retried on other workers and "
                            "they died too)")
        else:
            handle.error = f"the call failed on the Dask cluster ({kind}: {str(exc)[:300]})"


def from_spec(spec: str) -> Executor:
    """An executor from the agent's ``--executor`` text: ``local``, ``local-dask``,
    ``local-dask:processes``, ``local-dask:threads:8``, or a scheduler address ``tcp://host:8786``."""
    text = spec.strip()
    if text in ("", "local"):
        return LocalExecutor()
    if text.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        return DaskExecutor(address=text)
    parts = text.split(":")
    if parts[0] == "local-dask" and len(parts) <= 3:
        scheduler = parts[1] if len(parts) > 1 and parts[1] else "threads"
        workers = parts[2] if len(parts) > 2 else ""
        if workers and not workers.isdigit():
            raise ConfigurationError(f"executor {spec!r}: the worker count {workers!r} is not a whole number")
        return LocalDaskExecutor(scheduler=scheduler, num_workers=int(workers) if workers else None)
    raise ConfigurationError(f"executor {spec!r}: expected local, local-dask[:threads|processes[:N]] or a Dask "
                             "scheduler address such as tcp://127.0.0.1:8786")
