"""S3 (and S3-compatible endpoints) through boto3."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from gitflows.aws import AWSCredentials, split_client_options, translated
from gitflows.aws import client as aws_client
from gitflows.errors import BucketNotFoundError, ConfigurationError, NotFoundError, PathNotFoundError
from gitflows.redact import get_logger
from gitflows.remote import RetryPolicy, call

T = TypeVar("T")
log = get_logger("gitflows.storage.S3")


class S3Store:
    def __init__(self, bucket: str, client_options: Mapping[str, Any] | None = None,
                 upload_options: Mapping[str, Any] | None = None, policy: RetryPolicy | None = None,
                 credentials: AWSCredentials | None = None) -> None:
        self.bucket = bucket
        self.options, given = split_client_options(client_options, "S3")
        self.credentials = credentials if credentials else given
        self.upload_options = dict(upload_options or {})
        self._policy = policy
        self._client: Any = None

    def label(self) -> str:
        where = self.options.get("endpoint_url") or self.options.get("region_name") or "default region"
        return f"S3 bucket {self.bucket!r} ({where})"

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _c(self) -> Any:
        if self._client is None:
            self._client = aws_client("s3", self.options, "aws", self.credentials)
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
                    auth_hint="check the AWS credentials (client_options, the AWS_CREDENTIALS secret, environment, "
                              "profile or role)", policy=self._policy)

    def put(self, key: str, data: bytes) -> object:
        from boto3.s3.transfer import S3Transfer

        unknown = sorted(k for k in self.upload_options if k not in S3Transfer.ALLOWED_UPLOAD_ARGS)
        if unknown:
            raise ConfigurationError(f"{self.label()}: upload_options {', '.join(unknown)} are not upload arguments "
                                     f"(allowed: {', '.join(S3Transfer.ALLOWED_UPLOAD_ARGS)})")
        log.info("Uploading %s to %s", key, self.bucket)
        return self._call(lambda: self._c().put_object(Bucket=self.bucket, Key=key, Body=data, **self.upload_options),
                          key, "uploading")

    def get(self, key: str) -> bytes:
        log.info("Downloading flow from %s", self.url(key))

        def download() -> tuple[dict[str, Any], bytes]:
            answer = self._c().get_object(Bucket=self.bucket, Key=key)
            body = answer["Body"]
            try:
                return answer, body.read()
            finally:
                body.close()

        answer, data = self._call(download, key, "downloading")
        modified = answer.get("LastModified")
        log.info("Flow successfully downloaded. ETag: %s, LastModified: %s, VersionId: %s", answer.get("ETag"),
                 modified.isoformat() if modified is not None else None, answer.get("VersionId"))
        return data
