"""An HTTP endpoint that stores what it is sent (``Webhook`` storage), through requests.

Templates follow Prefect 1 (``string.Template``): every string *value* of the request arguments,
in nested dicts too, may hold ``${VAR}`` / ``$VAR``, filled right before the request from
environment variables, then from secrets; ``$$`` is a literal ``$``. Keys, and values inside lists,
are sent as they are. A variable found nowhere is a :class:`ConfigurationRuntimeError` (a
``RuntimeError``, as Prefect raised) naming it. Filled values are registered as secrets: they never
show in logs or errors. ``${GITFLOWS_KEY}`` is the flow's key (gitflows only).
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterator, Mapping
from typing import Any

from gitflows.errors import (
    ConfigurationError,
    ConfigurationRuntimeError,
    GitflowsError,
    PathNotFoundError,
    SecretNotFoundError,
)
from gitflows.redact import register_secret
from gitflows.remote import HTTPFailure, RetryPolicy, also_builtin, call
from gitflows.secrets import resolve_secret

#: template variables whose values are credentials (masked wherever they appear), besides secrets
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|PWD|KEY|CREDENTIAL|AUTH|SIGNATURE|SAS", re.IGNORECASE)

HTTP_METHODS = ("GET", "PATCH", "POST", "PUT")  # Prefect 1's list
KEY_VARIABLE = "GITFLOWS_KEY"


class _Variables(Mapping[str, str]):
    """``string.Template`` lookups: extra variables, then the environment, then secrets."""

    def __init__(self, where: str, extra: dict[str, str]) -> None:
        self.where, self.extra = where, extra

    def __getitem__(self, name: str) -> str:
        if name in self.extra:
            return self.extra[name]
        value = os.environ.get(name)
        secret = value is None or _SECRET_NAME.search(name) is not None
        if value is None:
            try:
                value = resolve_secret(name)  # a secret source: masked everywhere from now on
            except SecretNotFoundError as exc:
                raise ConfigurationRuntimeError(
                    f"{self.where}: Template value '{name}' does not refer to an environment variable or secret "
                    f"({exc}); set it, or write $$ for a literal $") from None
        if secret:
            # only secrets and credential-named variables are masked: masking every filled value (a URL,
            # an organisation name) would rewrite unrelated fields ("acme/flows" -> "***/flows")
            register_secret(value)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def fill(value: Any, where: str = "request", extra: dict[str, str] | None = None) -> Any:
    """A copy of *value* (request arguments) with the templates of its string values filled, recursively
    through dicts, as Prefect 1's ``_render_dict``; *value* itself is not changed."""
    variables = _Variables(where, extra or {})

    def one(item: Any, path: str) -> Any:
        if isinstance(item, str):
            try:
                return string.Template(item).substitute(variables)
            except GitflowsError:
                raise
            except ValueError:
                raise ConfigurationError(f"{where}: {path} has an invalid template ({_invalid(item)}); write "
                                         "${NAME} for a variable, $$ for a literal $") from None
        if isinstance(item, dict):
            return {k: one(v, f"{path}[{k!r}]") for k, v in item.items()}
        return item

    return one(value, "request argument")


def _invalid(text: str) -> str:
    """Where the first bad ``$`` is, without showing the value (it may hold a secret)."""
    match = string.Template.pattern.search(text)
    while match is not None and match.group("invalid") is None:
        match = string.Template.pattern.search(text, match.end())
    return f"a '$' at character {match.start('invalid') + 1}" if match else "a bad '$'"


def uses_variable(value: Any, name: str) -> bool:
    """Whether a template among the string values of *value* (nested dicts) names *name*."""
    if isinstance(value, str):
        try:
            return name in string.Template(value).get_identifiers()
        except ValueError:
            return False
    if isinstance(value, dict):
        return any(uses_variable(v, name) for v in value.values())
    return False


def check_method(method: object, argument: str) -> str:
    """*method* upper-cased when it is one of Prefect's HTTP methods, else a ``RuntimeError`` as Prefect raised."""
    if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
        raise ConfigurationRuntimeError(f"Webhook storage: HTTP method '{method}' not recognized "
                                        f"({argument}); use one of {', '.join(HTTP_METHODS)}")
    return method.upper()


class WebhookStore:
    """``put`` sends the bytes with the build request; ``get`` fetches them with the get-flow request.

    Keys are not part of the URL unless the templates put them there with ``${GITFLOWS_KEY}``.
    """

    def __init__(self, build_request_kwargs: dict[str, Any], build_request_http_method: str,
                 get_flow_request_kwargs: dict[str, Any], get_flow_request_http_method: str,
                 policy: RetryPolicy | None = None) -> None:
        self.build_kwargs = build_request_kwargs
        self.build_method = check_method(build_request_http_method, "build_request_http_method")
        self.get_kwargs = get_flow_request_kwargs
        self.get_method = check_method(get_flow_request_http_method, "get_flow_request_http_method")
        self._policy = policy

    def label(self) -> str:
        return "Webhook"

    def _request(self, method: str, kwargs: dict[str, Any], key: str, action: str, data: bytes | None = None) -> Any:
        import requests

        filled = fill(kwargs, f"Webhook {action} request", {KEY_VARIABLE: key})
        if "url" not in filled:
            raise ConfigurationError(f"Webhook {action} request arguments need a 'url'")
        filled.setdefault("timeout", 30)
        if data is not None:
            filled["data"] = data
        url = str(filled["url"])
        last: list[int | None] = []

        def once() -> Any:
            try:
                response = requests.request(method, **filled)
            except requests.RequestException as exc:
                last.append(None)
                raise HTTPFailure(None, {}, type(exc).__name__) from None
            if response.status_code >= 400:
                last.append(response.status_code)
                raise HTTPFailure(response.status_code, dict(response.headers), response.text[:200])
            # the filled request (headers with secrets) is not kept. requests types the attribute as
            # PreparedRequest, yet leaves it None itself until a request is attached (Response.__init__)
            response.request = None  # type: ignore[assignment]
            return response

        where = f"Webhook {method} {_no_query(url)}"
        try:
            return call(once, where=where, action=f"{action} {key!r}", not_found=PathNotFoundError,
                        auth_hint="check the credentials in the request templates", policy=self._policy)
        except GitflowsError as exc:
            if not last:
                raise
            # Prefect 1's raise_for_status() raised requests.HTTPError (ConnectionError with no answer): keep
            # `except requests.HTTPError` working. The filled request is not attached (it holds the secrets).
            error = also_builtin(exc, requests.ConnectionError if last[-1] is None else requests.HTTPError)
            error.response, error.request = None, None  # type: ignore[attr-defined]
            error.status_code = last[-1]  # type: ignore[attr-defined]
            raise error from None

    def put(self, key: str, data: bytes) -> Any:
        """Send *data*; returns the ``requests.Response`` (without its request)."""
        return self._request(self.build_method, self.build_kwargs, key, "uploading", data)

    def get(self, key: str) -> bytes:
        content: bytes = self._request(self.get_method, self.get_kwargs, key, "downloading").content
        return content


def _no_query(url: str) -> str:
    return url.split("?", 1)[0]
