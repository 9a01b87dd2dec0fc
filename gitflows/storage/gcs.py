"""``GCS``: flows as objects in a Google Cloud Storage bucket."""

from __future__ import annotations

from typing import Any

from gitflows.blobs.gcs import GCSStore
from gitflows.errors import FlowStorageError, PathNotFoundError
from gitflows.flow import Flow
from gitflows.storage.blob import BlobStorage


class GCS(BlobStorage):
    """``GCS(bucket, key=None, project=None, stored_as_script=False, local_script_path=None, **kwargs)``,
    as in Prefect 1.

    ``key``: where the flow is stored; without it, ``<slugified flow name>/<slugified UTC timestamp>``.
    ``stored_as_script=True`` uploads ``local_script_path`` under each flow's key; without it nothing
    is uploaded and the script is expected at ``key``. Credentials: the ``GCP_CREDENTIALS`` secret
    (a service account's JSON key, as Prefect 1's secret of that name), else Google's default chain
    (``GOOGLE_APPLICATION_CREDENTIALS``, metadata server); ``STORAGE_EMULATOR_HOST`` is honoured."""

    type_name = "GCS"
    fields = ("bucket", "key", "project", "local_script_path")

    def __init__(self, bucket: str, key: str | None = None, project: str | None = None, stored_as_script: bool = False,
                 local_script_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(stored_as_script=stored_as_script, local_script_path=local_script_path, **kwargs)
        self.bucket, self.key, self.project = bucket, key, project

    def make_store(self) -> GCSStore:
        return GCSStore(self.bucket, self.project)

    @property
    def _gcs_client(self) -> Any:
        """The google-cloud-storage client this storage uses (Prefect 1's property of that name)."""
        return self.make_store()._b().client

    def _load(self, name: str | None, location: str) -> Flow:
        try:
            return super()._load(name, location)
        except PathNotFoundError as err:  # Prefect 1: FlowStorageError("Flow not found in bucket: ...")
            from gitflows.remote import also_builtin

            raise also_builtin(err, FlowStorageError) from None
