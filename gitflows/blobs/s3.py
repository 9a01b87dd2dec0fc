"""S3 (and S3-compatible endpoints) through boto3."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from gitflows.aws import check_client_options, translated
from gitflows.aws import client as aws_client
from gitflows.errors import BucketNotFoundError, NotFoundError, PathNotFoundError
from gitflows.hosts.http import RetryPolicy, call

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
        def missing(code: str, status: int, message: str) -> Exception | None:
            if code == "NoSuchBucket":
                return BucketNotFoundError(f"{self.label()}: {action} {key!r}: the bucket does not exist")
            if code in ("NoSuchKey", "404") or status == 404:
                return PathNotFoundError(f"{self.label()}: {action} {key!r}: no such key")
            return None

        def wrapped() -> T:
            return translated(fn, missing)

        return call(wrapped, where=self.label(), action=f"{action} {key!r}", not_found=NotFoundError,
                    auth_hint="check the AWS credentials (environment, profile or role)", policy=self._policy)

    def put(self, key: str, data: bytes) -> object:
        return self._call(lambda: self._c().put_object(Bucket=self.bucket, Key=key, Body=data, **self.upload_options),
                          key, "uploading")

    def get(self, key: str) -> bytes:
        return self._call(lambda: self._c().get_object(Bucket=self.bucket, Key=key)["Body"].read(), key, "downloading")
