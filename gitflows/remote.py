"""The remote-call layer: one retry and failure policy for every network call gitflows makes.

Hosts, blob stores, AWS clients and the Docker registry client each wrap the calls to their client
library so that failures surface as :class:`HTTPFailure` (status, headers, the server's message,
redacted) — that translation is the only backend-specific part. :func:`call` then retries server
errors and timeouts with exponential backoff, waits for a rate limit to reset when that is within
``GITFLOWS_MAX_RATE_LIMIT_WAIT``, and otherwise raises, fresh (no library exception chained), the
error a user acts on, naming the server, what was being done, and on what.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gitflows.errors import (
    AccessDeniedError,
    AuthenticationError,
    GitflowsError,
    NotFoundError,
    RateLimitedError,
    RemoteError,
)
from gitflows.redact import get_logger, redact

log = get_logger(__name__)
T = TypeVar("T")


class HTTPFailure(Exception):
    """A failed call: *status* None means no HTTP answer (connection error, timeout)."""

    def __init__(self, status: int | None, headers: Mapping[str, str] | None = None, detail: str = "") -> None:
        self.detail = redact(detail)[:300]  # the server's text may echo the token: only ever kept redacted
        super().__init__(self.detail)
        self.status = status
        self.headers = {k.lower(): redact(str(v)) for k, v in (headers or {}).items()}


@dataclass
class RetryPolicy:
    """How hard to try. Backoff doubles per attempt; ``GITFLOWS_RETRY_BACKOFF`` sets the first wait."""

    attempts: int = 4
    backoff: float = field(default_factory=lambda: float(os.environ.get("GITFLOWS_RETRY_BACKOFF", "0.5")))
    max_rate_limit_wait: float = field(
        default_factory=lambda: float(os.environ.get("GITFLOWS_MAX_RATE_LIMIT_WAIT", "60")))


def rate_limit_reset(failure: HTTPFailure) -> float | None:
    """Epoch seconds when a rate limit resets, if this failure is a rate limit; else None."""
    h = failure.headers
    if failure.status not in (403, 429):
        return None
    now = time.time()
    if "retry-after" in h:
        try:
            return now + float(h["retry-after"])
        except ValueError:
            return now + 60
    if h.get("x-ratelimit-remaining") == "0" or h.get("ratelimit-remaining") == "0":
        for name in ("x-ratelimit-reset", "ratelimit-reset"):
            if name in h:
                try:
                    value = float(h[name])
                except ValueError:
                    continue
                # GitHub/GitLab send epoch seconds; some servers send seconds-from-now
                return value if value > 1e9 else now + value
        return now + 60
    if failure.status == 429:
        return now + 60
    return None


def _when(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def call(fn: Callable[[], T], *, where: str, action: str, not_found: type[NotFoundError] = NotFoundError,
         not_found_hint: str = "", auth_hint: str = "", policy: RetryPolicy | None = None,
         not_found_statuses: tuple[int, ...] = (404,)) -> T:
    """Run *fn*, retrying transient failures; map the final failure to a :class:`GitflowsError`.

    The error is raised fresh, outside the handler: no client-library exception or raw server text
    (which may echo a token) rides along as its ``__cause__`` or ``__context__``."""
    policy = policy or RetryPolicy()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except HTTPFailure as caught:
            failure = caught
        except GitflowsError as caught:  # decided inside fn (not found, bad configuration): detach it too
            raise detached(caught)  # noqa: B904 - chaining is what this cuts
        error = _final_error(failure, attempt, policy, f"{where}: {action}", where, not_found, not_found_hint,
                             auth_hint, not_found_statuses)
        if error is not None:
            raise error


def detached(error: BaseException) -> BaseException:
    """*error* cut from the exceptions it was raised while handling, with its text args redacted.

    ``raise ... from None`` only hides ``__context__`` from tracebacks: the client-library exception
    (holding the raw response, which may echo a token) stays reachable from the error. Raised from
    this, the error carries nothing but its own redacted message."""
    error.__cause__ = None
    error.__context__ = None
    error.__suppress_context__ = False
    error.args = tuple(redact(a) if isinstance(a, str) else a for a in error.args)
    return error


def _final_error(failure: HTTPFailure, attempt: int, policy: RetryPolicy, prefix: str, where: str,
                 not_found: type[NotFoundError], not_found_hint: str, auth_hint: str,
                 not_found_statuses: tuple[int, ...]) -> GitflowsError | None:
    """The error *failure* ends in, or None after waiting when it is worth another attempt."""
    status = failure.status
    detail = failure.detail or "no detail"
    reset = rate_limit_reset(failure)
    if reset is not None:
        wait = max(0.0, reset - time.time())
        if wait <= policy.max_rate_limit_wait and attempt < policy.attempts:
            log.warning("%s: rate limited; waiting %.1fs until it resets", where, wait)
            time.sleep(wait + 0.05)
            return None
        return RateLimitedError(f"{prefix}: rate limit exceeded (HTTP {status}); it resets at {_when(reset)} "
                                f"(in {int(wait)}s)", reset_at=reset)
    if status is None or status >= 500 or status == 408:
        if attempt < policy.attempts:
            delay = policy.backoff * (2 ** (attempt - 1))
            log.warning("%s: %s (attempt %d of %d); retrying in %.2fs", where,
                        failure.detail or f"HTTP {status}", attempt, policy.attempts, delay)
            time.sleep(delay)
            return None
        what = f"HTTP {status}" if status else "no answer"
        return RemoteError(f"{prefix}: server kept failing after {attempt} attempts ({what}: {detail})")
    if status == 401:
        return AuthenticationError(f"{prefix}: authentication failed (HTTP 401: {detail})"
                                   + (f"; {auth_hint}" if auth_hint else ""))
    if status == 403:
        return AccessDeniedError(f"{prefix}: access denied (HTTP 403: {detail})" + (f"; {auth_hint}" if auth_hint else ""))
    if status in not_found_statuses:
        hint = f"; {not_found_hint}" if not_found_hint else ""
        return not_found(f"{prefix}: not found (HTTP {status}: {detail}){hint}")
    return RemoteError(f"{prefix}: unexpected HTTP {status}: {detail}")


_ALSO: dict[tuple[type[GitflowsError], type[Exception]], type[GitflowsError]] = {}


def also_builtin(error: GitflowsError, builtin: type[Exception]) -> GitflowsError:
    """*error* as an instance of a subclass of its own class that is also *builtin*.

    Where Prefect 1 raised a builtin (Bitbucket Cloud: ``RuntimeError`` for a failed request,
    ``ValueError`` for an unknown ref), ``except RuntimeError:`` written for Prefect keeps catching,
    and ``except RepoNotFoundError:`` works too. Same message, attributes and class name."""
    if isinstance(error, builtin):
        return error
    cls = _also_class(type(error), builtin)
    # built through __init__: Python refuses a bare __new__ for some mixes (a RuntimeError-based error
    # that is also an OSError, such as requests' errors)
    copy = cls(*error.args)
    copy.__dict__.update(error.__dict__)
    return copy


def _also_class(base: type[GitflowsError], builtin: type[Exception]) -> type[GitflowsError]:
    key = (base, builtin)
    if key not in _ALSO:
        _ALSO[key] = type(base.__name__, (base, builtin), {
            "__module__": base.__module__, "__qualname__": base.__qualname__, "__reduce__": _reduce,
            "__doc__": f"{base.__name__}, also a {builtin.__name__} (as Prefect 1 raised here)."})
    return _ALSO[key]


def _reduce(self: GitflowsError) -> tuple[Any, ...]:
    base, builtin = next((b, x) for (b, x), c in _ALSO.items() if c is type(self))
    return _rebuild, (base, builtin, self.args, dict(self.__dict__))


def _rebuild(base: type[GitflowsError], builtin: type[Exception], args: tuple[Any, ...],
             state: dict[str, Any]) -> GitflowsError:
    error = base.__new__(base)
    error.args = args
    error.__dict__.update(state)
    return also_builtin(error, builtin)
