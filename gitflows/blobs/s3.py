"""S3 (and S3-compatible endpoints) through boto3."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from gitflows.aws import STATUS, check_client_options
from gitflows.aws import client as aws_client
from gitflows.errors import BucketNotFoundError, NotFoundError, PathNotFoundError
from gitflows.hosts.http import HTTPFailure, RetryPolicy, call

T = TypeVar("T")


class S3Store:
    def __init__(self, bucket: str, client_options: Mapping[str, Any] | None = None,
                 upload_options: Mapping[str, Any] | None = None, policy: RetryPolicy | None = None) -> None:
        self.bucket = bucket
        self.options = check_client_options(client_options, "S3")
        self.upload_options = dict(upload_options or {})
        self._policy = policy
        self._client: Any = None

    def label(self) -> str:
        where = self.options.get("endpoint_url") or self.options.get("region_name") or "default region"
        return f"S3 bucket {self.bucket!r} ({where})"

    def _c(self) -> Any:
        if self._client is None:
            self._client = aws_client("s3", self.options, "aws")
        return self._client

    def _call(self, fn: Callable[[], T], key: str, action: str) -> T:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        def wrapped() -> T:
            try:
                return fn()
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", ""))
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400
                if code == "NoSuchBucket":
                    raise BucketNotFoundError(f"{self.label()}: {action} {key!r}: the bucket does not exist") from None
                if code in ("NoSuchKey", "404") or (status == 404 and code != "NoSuchBucket"):
                    raise PathNotFoundError(f"{self.label()}: {action} {key!r}: no such key") from None
                raise HTTPFailure(STATUS.get(code, status), {}, f"{code}: {error.get('Message', '')}") from None
            except NoCredentialsError:
                raise HTTPFailure(401, {}, "no AWS credentials found (environment, profile or role)") from None
            except BotoCoreError as exc:
                raise HTTPFailure(None, {}, type(exc).__name__) from None

        return call(wrapped, where=self.label(), action=f"{action} {key!r}", not_found=NotFoundError,
                    auth_hint="check the AWS credentials (environment, profile or role)", policy=self._policy)

    def put(self, key: str, data: bytes) -> object:
        return self._call(lambda: self._c().put_object(Bucket=self.bucket, Key=key, Body=data, **self.upload_options),
                          key, "uploading")

    def get(self, key: str) -> bytes:
        return self._call(lambda: self._c().get_object(Bucket=self.bucket, Key=key)["Body"].read(), key, "downloading")
