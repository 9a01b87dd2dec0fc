"""What the AWS backends (CodeCommit, S3) share: client options without credentials, error codes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from gitflows.errors import ConfigurationError

T = TypeVar("T")
FORBIDDEN_OPTIONS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
#: AWS error codes -> the HTTP status gitflows' retry policy acts on
STATUS = {"AccessDenied": 403, "AccessDeniedException": 403, "AllAccessDisabled": 403,
          "UnrecognizedClientException": 401, "InvalidSignatureException": 401, "ExpiredTokenException": 401,
          "InvalidClientTokenId": 401, "InvalidAccessKeyId": 401, "SignatureDoesNotMatch": 401, "ExpiredToken": 401,
          "ThrottlingException": 503, "TooManyRequestsException": 503, "SlowDown": 503,
          "EncryptionKeyUnavailableException": 503, "InternalError": 500, "ServiceUnavailable": 503}


def check_client_options(options: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    """*options* for ``boto3.client``, refusing credentials (a storage is serialized; it names no secret values)."""
    options = dict(options or {})
    leaked = [k for k in FORBIDDEN_OPTIONS if k in options]
    if leaked:
        raise ConfigurationError(
            f"{what} client_options must not hold credentials ({', '.join(leaked)}): a storage is serialized "
            "and must never carry a secret. Use the AWS credential chain (environment, profile, role).")
    return options


def client(service: str, options: Mapping[str, Any], extra: str) -> Any:
    """A boto3 client with botocore's own retries off (gitflows.hosts.http retries)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ConfigurationError(f"{service} needs boto3: pip install 'gitflows[{extra}]'") from None
    options = dict(options)
    options.setdefault("config", Config(retries={"total_max_attempts": 1}))
    return boto3.client(service, **options)


def translated(fn: Callable[[], T], missing: Callable[[str, int, str], Exception | None]) -> T:
    """Run a boto3 call, turning its failures into what gitflows' retry policy acts on.

    *missing(code, status, message)* returns the not-found error for that answer, or None; anything
    else becomes an :class:`~gitflows.hosts.http.HTTPFailure` (retried when it is transient).
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from gitflows.hosts.http import HTTPFailure

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
        raise HTTPFailure(401, {}, "no AWS credentials found (environment, profile or role)") from None
    except BotoCoreError as exc:
        raise HTTPFailure(None, {}, type(exc).__name__) from None
