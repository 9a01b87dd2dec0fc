"""``S3``: flows as objects in an S3 bucket (pickled, or the script itself)."""

from __future__ import annotations

from typing import Any

from gitflows.aws import check_client_options
from gitflows.blobs import BlobStore
from gitflows.blobs.s3 import S3Store
from gitflows.storage.blob import BlobStorage


class S3(BlobStorage):
    """``S3(bucket, key=None, stored_as_script=False, local_script_path=None, client_options=None,
    upload_options=None, **kwargs)``. ``client_options`` go to ``boto3.client`` (no credentials:
    the AWS credential chain supplies them); ``upload_options`` to ``put_object``."""

    type_name = "S3"
    fields = ("bucket", "key", "client_options", "upload_options", "local_script_path")

    def __init__(self, bucket: str, key: str | None = None, stored_as_script: bool = False,
                 local_script_path: str | None = None, client_options: dict[str, Any] | None = None,
                 upload_options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(stored_as_script=stored_as_script, local_script_path=local_script_path, **kwargs)
        self.bucket, self.key = bucket, key
        self.client_options = check_client_options(client_options, "S3")
        self.upload_options = upload_options

    def make_store(self) -> BlobStore:
        return S3Store(self.bucket, self.client_options, self.upload_options)
