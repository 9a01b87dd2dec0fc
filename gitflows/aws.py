"""What the AWS backends (CodeCommit, S3) share: client options without credentials, error codes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitflows.errors import ConfigurationError

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
