"""What the AWS backends (CodeCommit, S3) share: client options, credentials, error codes.

Credentials, in order (Prefect 1's ``get_boto_client``, with explicit arguments first):

1. ``aws_access_key_id`` / ``aws_secret_access_key`` / ``aws_session_token`` given in
   ``client_options``. They are used for the client, and never serialized, printed, logged or
   pickled (:class:`AWSCredentials`): a storage rebuilt from ``serialize()`` on another machine
   does not have them and falls through to 2. and 3.
2. The secret ``AWS_CREDENTIALS`` (environment, keyring or secrets file; see
   :mod:`gitflows.secrets`): JSON with Prefect's key names ``ACCESS_KEY``, ``SECRET_ACCESS_KEY`` and
   optionally ``SESSION_TOKEN``.
3. boto3's default chain (environment, profile, role).

``profile_name`` and ``botocore_session`` in ``client_options`` make a ``boto3.session.Session``
(as Prefect did); ``use_session`` (deprecated in Prefect 0.14.9) is dropped with a warning.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from gitflows.errors import ConfigurationError
from gitflows.redact import register_secret

T = TypeVar("T")
#: client_options keys holding credentials: used, never serialized
CREDENTIAL_OPTIONS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
#: client_options keys holding live objects: used, never serialized
LIVE_OPTIONS = ("botocore_session",)
#: Prefect 1's secret: {"ACCESS_KEY": ..., "SECRET_ACCESS_KEY": ..., "SESSION_TOKEN": ...}
SECRET_NAME = "AWS_CREDENTIALS"
_SECRET_KEYS = {"ACCESS_KEY": "aws_access_key_id", "SECRET_ACCESS_KEY": "aws_secret_access_key",
                "SESSION_TOKEN": "aws_session_token"}
#: AWS error codes -> the HTTP status gitflows' retry policy acts on
STATUS = {"AccessDenied": 403, "AccessDeniedException": 403, "AllAccessDisabled": 403,
          "UnrecognizedClientException": 401, "InvalidSignatureException": 401, "ExpiredTokenException": 401,
          "InvalidClientTokenId": 401, "InvalidAccessKeyId": 401, "SignatureDoesNotMatch": 401, "ExpiredToken": 401,
          "InvalidToken": 401, "ThrottlingException": 503, "TooManyRequestsException": 503, "SlowDown": 503,
          "EncryptionKeyUnavailableException": 503, "InternalError": 500, "ServiceUnavailable": 503}


class AWSCredentials:
    """Credentials (and live objects) taken out of ``client_options``.

    Used to make the boto3 client; never in ``repr()``, ``serialize()`` or a pickle (a flow pickled
    with its storage attached does not carry them). Every value is registered with the redactor."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values = dict(values or {})
        for key in CREDENTIAL_OPTIONS:
            register_secret(self._values.get(key))

    def __bool__(self) -> bool:
        return any(self._values.get(k) for k in CREDENTIAL_OPTIONS)

    def client_kwargs(self) -> dict[str, Any]:
        """The credential arguments of ``boto3.client`` (empty when none were given)."""
        return {k: self._values[k] for k in CREDENTIAL_OPTIONS if self._values.get(k)}

    @property
    def botocore_session(self) -> Any:
        return self._values.get("botocore_session")

    def __repr__(self) -> str:
        given = [k for k in (*CREDENTIAL_OPTIONS, *LIVE_OPTIONS) if self._values.get(k) is not None]
        return f"AWSCredentials({', '.join(given) or 'none'}; values hidden)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (AWSCredentials, ())  # never pickled with their values


def split_client_options(options: Mapping[str, Any] | None, what: str) -> tuple[dict[str, Any], AWSCredentials]:
    """*options* for ``boto3.client`` without credentials and live objects, and those apart.

    The first part is what a storage keeps in ``client_options`` and serializes."""
    if options is not None and not isinstance(options, Mapping):
        raise ConfigurationError(f"{what} client_options must be a dict of boto3.client arguments, "
                                 f"got {type(options).__name__}")
    options = dict(options or {})
    if options.pop("use_session", None) is not None:
        warnings.warn("The `use_session` kwarg has been deprecated, prefect now infers whether a new boto session "
                      "should be used automatically.", stacklevel=3)
    hidden = {k: options.pop(k) for k in (*CREDENTIAL_OPTIONS, *LIVE_OPTIONS) if k in options}
    for key in CREDENTIAL_OPTIONS:
        if hidden.get(key) is not None and not isinstance(hidden[key], str):
            raise ConfigurationError(f"{what} client_options: {key} must be a string, got {type(hidden[key]).__name__}")
    credentials = AWSCredentials(hidden)
    given = credentials.client_kwargs()
    if given and not ("aws_access_key_id" in given and "aws_secret_access_key" in given):
        missing = [k for k in CREDENTIAL_OPTIONS[:2] if k not in given]
        raise ConfigurationError(f"{what} client_options: credentials need both aws_access_key_id and "
                                 f"aws_secret_access_key; missing {', '.join(missing)}")
    return options, credentials


def secret_credentials() -> dict[str, str]:
    """The ``boto3.client`` credential arguments from the ``AWS_CREDENTIALS`` secret, or {} when it is not set."""
    from gitflows.secrets import resolve_optional_secret

    raw = resolve_optional_secret(SECRET_NAME)
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ConfigurationError(f"secret {SECRET_NAME} must be JSON like {{\"ACCESS_KEY\": ..., "
                                 "\"SECRET_ACCESS_KEY\": ..., \"SESSION_TOKEN\": ...}} (SESSION_TOKEN optional); "
                                 "it is not a JSON object")
    for value in data.values():
        if isinstance(value, str):
            register_secret(value)
    missing = [k for k in ("ACCESS_KEY", "SECRET_ACCESS_KEY") if not isinstance(data.get(k), str) or not data[k]]
    if missing:
        raise ConfigurationError(f"secret {SECRET_NAME} lacks {', '.join(missing)} (keys found: "
                                 f"{', '.join(sorted(map(str, data))) or 'none'}); expected ACCESS_KEY, "
                                 "SECRET_ACCESS_KEY and optionally SESSION_TOKEN")
    return {_SECRET_KEYS[k]: data[k] for k in _SECRET_KEYS if isinstance(data.get(k), str) and data[k]}


def client(service: str, options: Mapping[str, Any], extra: str, credentials: AWSCredentials | None = None) -> Any:
    """A boto3 client with botocore's own retries off (gitflows.remote retries).

    Credentials: those given in ``client_options``, else the ``AWS_CREDENTIALS`` secret, else
    boto3's default chain."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError:
        raise ConfigurationError(f"{service} needs boto3: pip install -e '.[{extra}]' in the gitflows checkout") from None
    options = dict(options)
    no_retries = Config(retries={"total_max_attempts": 1})
    options["config"] = no_retries.merge(options["config"]) if options.get("config") else no_retries
    keys = (credentials.client_kwargs() if credentials else {}) or secret_credentials()
    profile = options.pop("profile_name", None)
    botocore_session = credentials.botocore_session if credentials else None
    try:
        if profile or botocore_session:
            session = boto3.session.Session(profile_name=profile, region_name=options.pop("region_name", None),
                                            botocore_session=botocore_session)
            return session.client(service, **keys, **options)
        return boto3.client(service, **keys, **options)
    except BotoCoreError as exc:  # ProfileNotFound, NoRegionError, PartialCredentialsError...
        raise ConfigurationError(f"{service} client could not be made from client_options "
                                 f"({type(exc).__name__}: {exc})") from None


def translated(fn: Callable[[], T], missing: Callable[[str, int, str], Exception | None]) -> T:
    """Run a boto3 call, turning its failures into what gitflows' retry policy acts on.

    *missing(code, status, message)* returns the not-found error for that answer, or None; anything
    else becomes an :class:`~gitflows.remote.HTTPFailure` (retried when it is transient).
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

    from gitflows.remote import HTTPFailure

    try:
        return fn()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = f"{code}: {error.get('Message', '')}"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400
        not_found = missing(code, status, message)
        if not_found is not None:
            raise not_found from None
        raise HTTPFailure(STATUS.get(code) or status, {}, message) from None
    except NoCredentialsError:
        raise HTTPFailure(401, {}, "no AWS credentials found (client_options, the AWS_CREDENTIALS secret, "
                                   "environment, profile or role)") from None
    except ParamValidationError as exc:  # a bad argument: retrying cannot help
        raise ConfigurationError(f"invalid AWS request ({exc})") from None
    except BotoCoreError as exc:
        raise HTTPFailure(None, {}, type(exc).__name__) from None
