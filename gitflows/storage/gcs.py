"""``GCS``: flows as objects in a Google Cloud Storage bucket."""

from __future__ import annotations

from typing import Any

from gitflows.blobs import BlobStore
from gitflows.blobs.gcs import GCSStore
from gitflows.storage.blob import BlobStorage


class GCS(BlobStorage):
    """``GCS(bucket, key=None, project=None, stored_as_script=False, local_script_path=None, **kwargs)``.
    Credentials come from Google's default chain (``GOOGLE_APPLICATION_CREDENTIALS``...)."""

    type_name = "GCS"
    fields = ("bucket", "key", "project", "local_script_path")

    def __init__(self, bucket: str, key: str | None = None, project: str | None = None, stored_as_script: bool = False,
                 local_script_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(stored_as_script=stored_as_script, local_script_path=local_script_path, **kwargs)
        self.bucket, self.key, self.project = bucket, key, project

    def make_store(self) -> BlobStore:
        return GCSStore(self.bucket, self.project)
