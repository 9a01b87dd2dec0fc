"""``S3``: flows as objects in an S3 bucket (pickled, or the script itself)."""

from __future__ import annotations

from typing import Any

from gitflows.aws import split_client_options
from gitflows.blobs.s3 import S3Store
from gitflows.storage.blob import BlobStorage


class S3(BlobStorage):
    """``S3(bucket, key=None, stored_as_script=False, local_script_path=None, client_options=None,
    upload_options=None, **kwargs)``, as in Prefect 1.

    ``key``: where the flow is stored; without it, ``<slugified flow name>/<slugified UTC timestamp>``.
    ``stored_as_script=True`` uploads ``local_script_path`` under each flow's key; without
    ``local_script_path`` nothing is uploaded and the script is expected at ``key`` (uploaded by you).
    ``client_options`` go to ``boto3.client``; credentials in them (``aws_access_key_id``...) are used
    but never serialized or printed (see :mod:`gitflows.aws` for the order credentials are looked
    for in, the ``AWS_CREDENTIALS`` secret included). ``upload_options`` are the upload's
    ``ExtraArgs`` (``ServerSideEncryption``, ``ContentType``...).
    """

    type_name = "S3"
    fields = ("bucket", "key", "client_options", "upload_options", "local_script_path")

    def __init__(self, bucket: str, key: str | None = None, stored_as_script: bool = False,
                 local_script_path: str | None = None, client_options: dict[str, Any] | None = None,
                 upload_options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(stored_as_script=stored_as_script, local_script_path=local_script_path, **kwargs)
        self.bucket, self.key = bucket, key
        options, self._credentials = split_client_options(client_options, "S3")
        self.client_options = options if client_options is not None else None
        self.upload_options = upload_options

    def make_store(self) -> S3Store:
        return S3Store(self.bucket, self.client_options, self.upload_options, credentials=self._credentials)

    @property
    def _boto3_client(self) -> Any:
        """The boto3 S3 client this storage uses (Prefect 1's property of that name)."""
        return self.make_store()._c()
