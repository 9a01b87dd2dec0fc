"""Shared machinery for API fakes served with `responses`: routing, auth, counting, failure injection."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import responses

Reply = tuple[int, dict[str, str], str]


@dataclass
class Failure:
    pattern: re.Pattern[str]
    reply: Reply
    times: int


@dataclass
class FakeAPI:
    """Routes (method, path regex) to handlers; every request is recorded in `requests`."""

    base: str
    rsps: responses.RequestsMock
    routes: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    auth_headers: list[str | None] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    last_body: bytes | str | None = None
    last_headers: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        prefix = re.escape(self.base.rstrip("/"))
        for method in ("GET", "POST"):
            self.rsps.add_callback(method, re.compile(prefix + r"/.*"), callback=self._dispatch)

    def route(self, method: str, pattern: str, handler: Callable[..., Reply]) -> None:
        self.routes.append((method, re.compile("^" + pattern + "$"), handler))

    def fail(self, pattern: str, status: int, body: dict | str | None = None, headers: dict | None = None,
             times: int = 1) -> None:
        text = json.dumps(body) if isinstance(body, dict) else (body or "")
        hdrs = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        self.failures.append(Failure(re.compile(pattern), (status, hdrs, text), times))

    def check_auth(self, request) -> Reply | None:  # overridden per API
        return None

    def _dispatch(self, request) -> Reply:
        url = urlsplit(request.url)
        path = url.path[len(urlsplit(self.base).path.rstrip("/")):]
        self.requests.append((request.method, path + (f"?{url.query}" if url.query else "")))
        self.auth_headers.append(request.headers.get("Authorization"))
        self.last_body, self.last_headers = request.body, request.headers  # for handlers that read them (git)
        for failure in self.failures:
            if failure.times > 0 and failure.pattern.search(path):
                failure.times -= 1
                return failure.reply
        denied = self.check_auth(request)
        if denied:
            return denied
        query = Query({k: v[-1] for k, v in parse_qs(url.query).items()})
        query.lists = parse_qs(url.query)
        for method, pattern, handler in self.routes:
            match = pattern.match(path)
            if method == request.method and match:
                return handler(query, *match.groups())
        return self.not_found(path)

    def not_found(self, path: str) -> Reply:
        return json_reply(404, {"message": "Not Found"})


class Query(dict):
    """The last value of each query parameter; ``lists`` has every value of repeated ones."""

    lists: dict[str, list[str]]


def json_reply(status: int, body: object, headers: dict | None = None) -> Reply:
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, json.dumps(body)


def rate_limit_headers(remaining: int = 4999, reset_in: float = 3600) -> dict[str, str]:
    return {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Used": str(5000 - remaining),
            "X-RateLimit-Reset": str(int(time.time() + reset_in)), "X-RateLimit-Resource": "core"}
