"""An HTTP endpoint that stores what it is sent (``Webhook`` storage), through requests.

Request arguments may hold ``${VAR}`` / ``$VAR`` templates in any string, nested in dicts and
lists; they are filled from environment variables, then from secrets, right before a request.
``$$`` is a literal ``$``. A missing variable is an error naming it. Filled values are secrets
for redaction purposes: they never show in logs or errors.
"""

from __future__ import annotations

import os
import re
from typing import Any, TypeVar

from gitflows.errors import ConfigurationError, PathNotFoundError, SecretNotFoundError
from gitflows.hosts.http import HTTPFailure, RetryPolicy, call
from gitflows.redact import register_secret
from gitflows.secrets import resolve_secret

T = TypeVar("T")
_TEMPLATE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def fill(value: Any, where: str = "request", extra: dict[str, str] | None = None) -> Any:
    """*value* with every template filled (strings, nested dicts and lists); other values as they are.

    *extra* variables (``GITFLOWS_KEY``, ``GITFLOWS_FLOW_NAME``) come first, then the environment,
    then secrets."""
    extra = extra or {}
    if isinstance(value, str):
        def one(match: re.Match[str]) -> str:
            if match.group(1):
                return "$"
            name = match.group(2) or match.group(3)
            if name in extra:
                return extra[name]
            found = os.environ.get(name)
            if found is None:
                try:
                    found = resolve_secret(name)
                except SecretNotFoundError:
                    raise ConfigurationError(f"{where}: template variable {name!r} is not set (looked in the "
                                             "environment and the secrets)") from None
            register_secret(found)
            return found

        return _TEMPLATE.sub(one, value)
    if isinstance(value, dict):
        return {k: fill(v, where, extra) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(fill(v, where, extra) for v in value)
    return value


class WebhookStore:
    """``put`` sends the bytes with the build request; ``get`` fetches them with the get-flow request.

    Keys are not part of the URL unless the templates put them there: ``${GITFLOWS_KEY}`` (and
    ``${GITFLOWS_FLOW_NAME}``) can be used in the request arguments.
    """

    def __init__(self, build_request_kwargs: dict[str, Any], build_request_http_method: str,
                 get_flow_request_kwargs: dict[str, Any], get_flow_request_http_method: str,
                 policy: RetryPolicy | None = None) -> None:
        self.build_kwargs, self.build_method = build_request_kwargs, build_request_http_method.upper()
        self.get_kwargs, self.get_method = get_flow_request_kwargs, get_flow_request_http_method.upper()
        self._policy = policy

    def label(self) -> str:
        return "Webhook"

    def _request(self, method: str, kwargs: dict[str, Any], key: str, action: str, data: bytes | None = None) -> Any:
        import requests

        filled = fill(kwargs, f"Webhook {action} request", {"GITFLOWS_KEY": key})
        if "url" not in filled:
            raise ConfigurationError(f"Webhook {action} request arguments need a 'url'")
        filled.setdefault("timeout", 30)
        if data is not None:
            filled["data"] = data
        url = str(filled["url"])

        def once() -> Any:
            try:
                response = requests.request(method, **filled)
            except requests.RequestException as exc:
                raise HTTPFailure(None, {}, type(exc).__name__) from None
            if response.status_code >= 400:
                raise HTTPFailure(response.status_code, dict(response.headers), response.text[:200])
            return response

        where = f"Webhook {method} {_no_query(url)}"
        return call(once, where=where, action=f"{action} {key!r}", not_found=PathNotFoundError,
                    auth_hint="check the credentials in the request templates", policy=self._policy)

    def put(self, key: str, data: bytes) -> object:
        response = self._request(self.build_method, self.build_kwargs, key, "uploading", data)
        try:
            return response.json()
        except ValueError:
            return {"status_code": response.status_code, "text": response.text[:1000]}

    def get(self, key: str) -> bytes:
        content: bytes = self._request(self.get_method, self.get_kwargs, key, "downloading").content
        return content



def _no_query(url: str) -> str:
    return url.split("?", 1)[0]


